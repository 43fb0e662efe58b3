"""`grader check` says the sandbox in one line; `grader run` and `grader sandbox` list it."""

from __future__ import annotations

from dataclasses import dataclass, field

from grader.api.common import sandbox_line
from grader.sandbox.probe import LAYERS, Layer


@dataclass
class Box:
    """What sandbox_line reads of a Sandbox."""

    mode: str
    off: tuple[str, ...] = ()
    layers: list[Layer] = field(init=False)

    def __post_init__(self) -> None:
        self.layers = [Layer(name, name not in self.off, "detail") for name in LAYERS]


def test_every_layer_on_is_one_short_line() -> None:
    assert sandbox_line(Box("bwrap")) == (  # type: ignore[arg-type]
        "sandbox: bubblewrap, 6 of 6 layers on (`grader sandbox` lists them)"
    )


def test_the_layers_off_are_named() -> None:
    box = Box("none", off=("namespaces", "identity", "cgroups"))
    assert sandbox_line(box) == (  # type: ignore[arg-type]
        "sandbox: no namespaces, 3 of 6 layers on; off: namespaces, identity, cgroups "
        "(`grader sandbox` lists them)"
    )
