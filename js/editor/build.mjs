// Builds the editor's anywidget front end: src/index.jsx -> jupyter_pipelines/view/static/editor.js
// (+ editor.css), one minified ES module, no CDN. Deterministic: the same sources and lock file
// give byte-identical files (CI rebuilds and diffs them).
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(here, "../../jupyter_pipelines/view/static");

const result = await build({
  entryPoints: { editor: path.join(here, "src/index.jsx") },
  outdir,
  bundle: true,
  minify: true,
  format: "esm",
  platform: "browser",
  target: ["es2020"],
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  legalComments: "eof",
  charset: "utf8",
  sourcemap: false,
  absWorkingDir: here,
  logLevel: "warning",
  metafile: true,
});
for (const [file, info] of Object.entries(result.metafile.outputs)) {
  console.log(`${path.relative(here, file)}  ${(info.bytes / 1024).toFixed(1)} KiB`);
}
