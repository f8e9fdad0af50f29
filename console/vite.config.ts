import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The build lands inside the Python package, which serves it at / (`clarion serve`).
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "../src/clarion/console_dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2022",
  },
  server: {
    // `npm run dev` talks to a `clarion serve` on the default port.
    proxy: {
      "^/(?!src|@|node_modules|assets).*": {
        target: "http://127.0.0.1:8000",
        bypass: (req) => (req.headers.accept?.startsWith("text/html") ? "/index.html" : undefined),
      },
    },
  },
  test: {
    include: ["tests/unit/**/*.test.ts"],
    environment: "node",
  },
});
