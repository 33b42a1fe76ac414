"""The refiner's configuration: one JSON-serialisable record that fully determines the network's architecture.

Defaults follow PoseFix (Moon et al., CVPR 2019, Sec. 5 and its released ``config.py``): ResNet-50 body, 256x192
input, input-heatmap sigma 7 px (9 px at 384x288), three 4x4 stride-2 deconvolutions with 256 channels, loss =
heatmap cross-entropy + L1 on coordinates with weight 1 each. The head variants ``prior``, ``skip`` and
``prior+skip`` come from the feasibility note (``../shared/notes/refiner-feasibility.md``, issue 11); see
:mod:`posefix_bench.models.heads`.

A checkpoint stores :meth:`RefinerConfig.to_dict` (every default resolved), so loading rebuilds exactly the network
that was trained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from posefix_bench.errors import PosefixError
from posefix_bench.structures.schema import SCHEMAS

__all__ = ["RefinerConfig", "default_sigma", "PRIOR_FORMS", "PUBLISHED_SIGMAS"]

# input-heatmap sigma (input pixels) of the published input sizes, keyed by (W, H)
PUBLISHED_SIGMAS = {(192, 256): 7.0, (288, 384): 9.0}
PRIOR_FORMS = ("log", "linear")
_PRIOR_WEIGHT_DEFAULT = {"log": 1.0, "linear": 10.0}


def default_sigma(input_size: tuple[int, int]) -> float:
    """The published sigma for 256x192 / 384x288; otherwise 7 px scaled with the input width (7 * W / 192)."""
    w, h = int(input_size[0]), int(input_size[1])
    return PUBLISHED_SIGMAS.get((w, h), 7.0 * w / 192.0)


@dataclass
class RefinerConfig:
    """Architecture and loss of a refiner.

    Attributes:
        backbone: a name in :data:`posefix_bench.models.backbones.BACKBONES` (``resnet18`` .. ``resnet152``).
        head: a name in :data:`posefix_bench.models.heads.HEADS` (``posefix``, ``prior``, ``skip``,
            ``prior+skip``).
        input_size: (W, H) of the crop in pixels; both multiples of the output stride.
        schema: keypoint schema name (``coco17``, ...; any name for a custom layout, then give num_keypoints).
        num_keypoints: K; default: the schema's.
        sigma: input-heatmap sigma in input pixels; default :func:`default_sigma`.
        deconv_channels: channels of each deconvolution (256).
        num_deconv: number of 4x4 stride-2 deconvolutions (1..3); output stride 32 / 2**num_deconv.
        heatmap_loss_weight, coord_loss_weight: loss = w_h * cross-entropy + w_c * L1 (1 and 1 as published).
        prior_form: identity-prior form for the ``prior`` heads: ``log`` (log of the pooled input heatmap, the
            default; at initialisation the output equals the input pose) or ``linear`` (the heatmap itself, as in
            the feasibility note).
        prior_weight: initial value of the learnable per-joint prior weight; default 1 (``log``) / 10 (``linear``).
        pretrained: optional path or URL of an ImageNet-style ResNet checkpoint for the body (its 3-channel conv1
            is inflated to 3 + K channels); None: random initialisation.
    """

    backbone: str = "resnet50"
    head: str = "posefix"
    input_size: tuple[int, int] = (192, 256)
    schema: str = "coco17"
    num_keypoints: int | None = None
    sigma: float | None = None
    deconv_channels: int = 256
    num_deconv: int = 3
    heatmap_loss_weight: float = 1.0
    coord_loss_weight: float = 1.0
    prior_form: str = "log"
    prior_weight: float | None = None
    pretrained: str | None = None

    def __post_init__(self) -> None:
        self._normalise()
        self._check()

    def _normalise(self) -> None:
        try:
            size = tuple(int(v) for v in self.input_size)
        except (TypeError, ValueError):
            raise PosefixError(f"refiner config: input_size must be (W, H) integers, got {self.input_size!r}") from None
        if len(size) != 2:
            raise PosefixError(f"refiner config: input_size must be (W, H), got {self.input_size!r}")
        self.input_size = size
        known = SCHEMAS.get(self.schema)
        if self.num_keypoints is None:
            if known is None:
                raise PosefixError(f"refiner config: schema {self.schema!r} is not built in; give num_keypoints")
            self.num_keypoints = known.num_keypoints
        self.num_keypoints = int(self.num_keypoints)
        if known is not None and self.num_keypoints != known.num_keypoints:
            raise PosefixError(
                f"refiner config: schema {self.schema!r} has {known.num_keypoints} keypoints, "
                f"num_keypoints is {self.num_keypoints}"
            )
        self.sigma = float(default_sigma(size) if self.sigma is None else self.sigma)
        if self.prior_form not in PRIOR_FORMS:
            raise PosefixError(f"refiner config: unknown prior_form {self.prior_form!r} (known: {', '.join(PRIOR_FORMS)})")
        if self.prior_weight is None:
            self.prior_weight = _PRIOR_WEIGHT_DEFAULT[self.prior_form]
        self.prior_weight = float(self.prior_weight)
        for name in ("deconv_channels", "num_deconv"):
            setattr(self, name, int(getattr(self, name)))
        for name in ("heatmap_loss_weight", "coord_loss_weight"):
            setattr(self, name, float(getattr(self, name)))

    def _check(self) -> None:
        w, h = self.input_size
        if not 1 <= self.num_deconv <= 3:
            raise PosefixError(f"refiner config: num_deconv must be 1, 2 or 3, got {self.num_deconv}")
        s = self.stride
        if w < 32 or h < 32 or w % s or h % s:
            raise PosefixError(
                f"refiner config: input_size {w}x{h} (W x H) must be at least 32 and a multiple of the output "
                f"stride {s}"
            )
        if self.num_keypoints < 1 or self.sigma <= 0 or self.deconv_channels < 1:
            raise PosefixError("refiner config: num_keypoints, sigma and deconv_channels must be positive")
        if self.heatmap_loss_weight < 0 or self.coord_loss_weight < 0:
            raise PosefixError("refiner config: loss weights must be non-negative")

    # -- derived -------------------------------------------------------------------------------------------
    @property
    def stride(self) -> int:
        """Output stride (4 with three deconvolutions)."""
        return 2 ** (5 - self.num_deconv)

    @property
    def output_size(self) -> tuple[int, int]:
        """(w, h) of the output grid."""
        return self.input_size[0] // self.stride, self.input_size[1] // self.stride

    @property
    def in_channels(self) -> int:
        """Channels of the network input: RGB + one heatmap per keypoint."""
        return 3 + self.num_keypoints

    # -- serialisation -------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "refiner config") -> "RefinerConfig":
        """Build from a mapping (e.g. an mmengine config's ``model`` dict or a checkpoint's ``config``).

        Unknown keys and bad values raise a one-line :class:`PosefixError` naming ``source``.
        """
        if isinstance(data, RefinerConfig):
            return data
        if not isinstance(data, Mapping):
            raise PosefixError(f"{source}: expected a mapping of refiner settings, got {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise PosefixError(f"{source}: unknown refiner setting(s) {', '.join(unknown)} (known: {', '.join(sorted(fields))})")
        try:
            return cls(**dict(data))
        except PosefixError as e:
            raise PosefixError(f"{source}: {e}") from None
        except (TypeError, ValueError) as e:
            raise PosefixError(f"{source}: bad refiner setting ({e})") from None
