// uPlot charts, loaded on demand so the first page stays small.
import { lazy, Suspense } from "react";
import type { Series } from "./UPlotChart";

const UPlotChart = lazy(() => import("./UPlotChart"));

export type { Series };

export function Chart(props: {
  title: string;
  x: number[];
  series: Series[];
  kind?: "line" | "bars";
  yFormat?: (value: number) => string;
  xLabels?: string[];
}) {
  return (
    <figure className="chart">
      <figcaption>{props.title}</figcaption>
      <Suspense fallback={<div className="chart-placeholder" aria-hidden="true" />}>
        <UPlotChart {...props} />
      </Suspense>
    </figure>
  );
}
