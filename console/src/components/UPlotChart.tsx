import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  label: string;
  values: (number | null)[];
  color: string;
}

export default function UPlotChart({
  title,
  x,
  series,
  kind = "line",
  yFormat,
  xLabels,
}: {
  title: string;
  x: number[];
  series: Series[];
  kind?: "line" | "bars";
  yFormat?: (value: number) => string;
  xLabels?: string[];
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const paths = kind === "bars" ? uPlot.paths.bars?.({ size: [0.6, 40] }) : undefined;
    const plot = new uPlot(
      {
        width: Math.max(280, element.clientWidth),
        height: 220,
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        // Categories (statuses, channels) are indexes named by xLabels; otherwise x is time.
        scales: {
          x: xLabels ? { time: false, range: [-0.5, x.length - 0.5] } : { time: true },
          // Counts and credits start at zero, so that small days do not look like big ones.
          y: { range: (_u: uPlot, _min: number, max: number) => [0, max > 0 ? max * 1.1 : 1] },
        },
        axes: [
          {
            stroke: "#52606d",
            ...(xLabels
              ? {
                  splits: () => x,
                  values: (_u: uPlot, ticks: number[]) => ticks.map((t) => xLabels[t] ?? ""),
                }
              : {}),
          },
          {
            stroke: "#52606d",
            ...(yFormat ? { values: (_u: uPlot, ticks: number[]) => ticks.map(yFormat) } : {}),
          },
        ],
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            fill: kind === "bars" ? s.color : `${s.color}22`,
            width: 2,
            ...(paths ? { paths } : {}),
          })),
        ],
      },
      [x, ...series.map((s) => s.values)] as uPlot.AlignedData,
      element,
    );
    const resize = () => plot.setSize({ width: Math.max(280, element.clientWidth), height: 220 });
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      plot.destroy();
    };
  }, [x, series, kind, yFormat, xLabels]);
  return <div ref={box} role="img" aria-label={title} className="chart-box" />;
}
