"""Named registries: how a new model family, data source or metric joins the zoo.

Each kind of extension has one `Registry`; a module registers what it defines with the registry's
decorator, and the package that owns the registry imports every module in its folder
(`import_submodules`), so adding a file is all it takes.
"""

import importlib
import pkgutil

from vae_zoo.errors import UserInputError


class Registry:
    """A name -> object mapping filled by a decorator, with errors that list the known names.

    Args:
        kind: str. What the entries are ("model class", "data source", ...), for messages.
    """

    def __init__(self, kind):
        self.kind = kind
        self._entries = {}

    def register(self, name=None):
        """Decorator: `@REGISTRY.register()` (the object's `__name__`) or `.register("name")`."""

        def add(obj):
            key = name or obj.__name__
            if key in self._entries and self._entries[key] is not obj:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = obj
            return obj

        return add

    def get(self, name):
        if name not in self._entries:
            raise UserInputError(
                f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}"
            )
        return self._entries[name]

    def names(self):
        return sorted(self._entries)

    def items(self):
        return sorted(self._entries.items())

    def __contains__(self, name):
        return name in self._entries


def import_submodules(package_name, package_path):
    """Imports every module and subpackage of a package, so their registrations run."""
    for module in pkgutil.iter_modules(package_path):
        if not module.name.endswith("_test") and not module.name.startswith("_"):
            importlib.import_module(f"{package_name}.{module.name}")
