// Merged by @jupyterlab/builder into its webpack configuration (package.json: jupyterlab.webpackConfig).
// Webpack's default "deterministic" id of the federation container's entry module depends on the
// checkout's absolute path; "natural" ids (the modules' order) do not, so the same sources and
// package-lock.json give byte-identical files in jupyter_pipelines/labextension/ wherever they are built.
module.exports = {
  optimization: {
    moduleIds: 'natural'
  }
};
