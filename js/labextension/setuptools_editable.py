"""A setuptools ``editable_wheel`` that also installs the ``data-files``.

``pyproject.toml`` puts the prebuilt JupyterLab / Notebook 7 extension (``jupyter_pipelines/labextension/``)
in ``<prefix>/share/jupyter/labextensions/jupyter-pipelines-sync/`` through ``[tool.setuptools.data-files]``.
A regular wheel (``pip install .``) carries them; setuptools' editable wheel (``pip install -e .``) leaves
them out (setuptools 84: its ``_run_install("data")`` looks for ``Distribution.has_data``, which does not
exist). This subclass adds them to the editable wheel, as copies: after rebuilding the extension, run
``pip install -e .`` again. Where setuptools does install them itself, it does nothing more.

It is named in ``[tool.setuptools.cmdclass]``; nothing imports it at run time.
"""

from __future__ import annotations

from setuptools.command.editable_wheel import editable_wheel


class EditableWheelWithData(editable_wheel):
    def _run_build_commands(self, *args, **kwargs):
        result = super()._run_build_commands(*args, **kwargs)
        install_data = self.get_finalized_command("install_data")
        if self.distribution.has_data_files() and not install_data.get_outputs():
            self.run_command("install_data")
        return result
