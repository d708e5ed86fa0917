"""The registry helper shared by data sets, feature kinds and estimators."""

import doctest
import subprocess
import sys

import pytest

import estimators
from featurestore import datasets, features, registry
from featurestore.errors import ParameterError
from featurestore.registry import UnknownNameError


def test_module_names_lists_public_modules_without_importing(tmp_path):
    package = tmp_path / "plugins"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "beta.py").write_text("raise RuntimeError('imported')\n")  # listing must not import it
    (package / "alpha.py").write_text("")
    (package / "_private.py").write_text("")
    assert registry.module_names([str(package)]) == ("alpha", "beta")


def test_unknown_name_suggests_a_close_match_and_lists_the_valid_ones():
    error = registry.unknown("colour", "gren", ["red", "green"])
    assert isinstance(error, ParameterError) and isinstance(error, ValueError)
    assert str(error) == "unknown colour 'gren'. Did you mean 'green'? Valid: green, red"
    assert str(registry.unknown("colour", "zzz", ["red"])) == "unknown colour 'zzz'. Valid: red"


@pytest.mark.parametrize("lookup, name, what", [
    (datasets.get_module, "urbansound8", "data set"),
    (features.get, "mfc", "feature kind"),
    (estimators.get_spec, "svn", "estimator"),
])
def test_every_registry_raises_the_one_error(lookup, name, what):
    with pytest.raises(UnknownNameError, match=rf"^unknown {what} '{name}'\. Did you mean '"):
        lookup(name)


def test_listing_estimators_imports_no_torch():
    code = "import sys, estimators; estimators.available(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_docstring_examples():
    failed, attempted = doctest.testmod(registry)
    assert attempted > 0 and failed == 0
