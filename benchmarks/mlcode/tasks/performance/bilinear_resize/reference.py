import torch
import torch.nn.functional as F


def resize_bilinear(images: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    return F.interpolate(images, size=(out_h, out_w), mode="bilinear", align_corners=True)
