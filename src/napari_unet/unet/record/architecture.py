"""The network's constructor arguments, within the bounds a model file may declare."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .fields import (
    MAX_BASE_CHANNELS,
    MAX_CLASSES,
    MAX_DEPTH,
    MAX_IN_CHANNELS,
    MAX_PARAMETERS,
    PADDINGS,
    RecordError,
    _bool,
    _choice,
    _fail,
    _int,
    _keys,
    _number,
    _object,
)


# ---------------------------------------------------------------- architecture
@dataclass(frozen=True)
class Architecture:
    """The ``UNet(**kwargs)`` arguments (``UNet.config()``); the defaults are UNet's."""

    in_channels: int = 1
    n_classes: int = 2
    depth: int = 4
    base_channels: int = 64
    padding: str = "valid"
    batch_norm: bool = False
    dropout: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        """The ``UNet(**kwargs)`` arguments."""
        return asdict(self)

    def parameter_count(self) -> int:
        """The number of learnable parameters of ``UNet(**self.to_dict())``, computed
        without building it (arbitrary-precision integers: no overflow)."""
        bn = self.batch_norm

        def double(c_in: int, c_out: int) -> int:
            convs = 9 * c_in * c_out + 9 * c_out * c_out + (0 if bn else 2 * c_out)
            return convs + (4 * c_out if bn else 0)

        chans = [self.base_channels * 2**i for i in range(self.depth + 1)]
        total, prev = 0, self.in_channels
        for c in chans[:-1]:
            total += double(prev, c)
            prev = c
        total += double(chans[-2], chans[-1])
        for i in range(self.depth):
            total += 4 * chans[i + 1] * chans[i] + chans[i] + double(2 * chans[i], chans[i])
        return total + chans[0] * self.n_classes + self.n_classes

    @classmethod
    def from_dict(cls, value: Any, *, where: str = "", name: str = "architecture") -> Architecture:
        """Validate an architecture read from a file against the bounds above (before
        anything is allocated)."""
        try:
            d = _object(value, name, where)
            _keys(d, name, where, list(cls().to_dict()))
            full = cls().to_dict() | d
            arch = cls(
                in_channels=_int(full["in_channels"], f"{name}.in_channels", where, 1,
                                 MAX_IN_CHANNELS),
                n_classes=_int(full["n_classes"], f"{name}.n_classes", where, 1, MAX_CLASSES),
                depth=_int(full["depth"], f"{name}.depth", where, 1, MAX_DEPTH),
                base_channels=_int(full["base_channels"], f"{name}.base_channels", where, 1,
                                   MAX_BASE_CHANNELS),
                padding=_choice(full["padding"], f"{name}.padding", where, PADDINGS),
                batch_norm=_bool(full["batch_norm"], f"{name}.batch_norm", where),
                dropout=_number(full["dropout"], f"{name}.dropout", where, 0.0, None,
                                "a number in [0, 1)"),
            )  # fmt: skip
            if arch.dropout >= 1.0:
                _fail(where, f"{name}.dropout", "a number in [0, 1)", full["dropout"])
            n = arch.parameter_count()
            if n > MAX_PARAMETERS:
                raise RecordError(
                    where, f"{name}: depth {arch.depth} with {arch.base_channels} base "
                    f"channels has {n:,} parameters, more than the {MAX_PARAMETERS:,} allowed"
                )  # fmt: skip
        except RecordError as err:
            raise RecordError(where, "unknown or invalid architecture: " + err.text) from None
        return arch
