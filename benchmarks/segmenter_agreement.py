"""The subject segmenter on LiteRT's CPU interpreter and GPU accelerator: agreement and time.

    python benchmarks/segmenter_agreement.py [repeats]

On matplotlib's sample portrait (grace_hopper.jpg, 600 x 512) and scikit-image's astronaut (512 x 512):
the CPU matte's coverage of a central face box and of the top corners, the GPU accelerator's matte
against the CPU's (fp16 arithmetic, its default, and enforce_f32: max and mean abs difference, IoU of
the > 0.5 regions) and the median time of one matte (resize, run, resize back). GPU times on a
software adapter (lavapipe) say nothing about a phone's GPU: the adapter is printed.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import torch
from PIL import Image

from bokeh.export.pair import iou
from bokeh.runtimes.segmenter import SubjectSegmenter


def photos() -> dict[str, torch.Tensor]:
    from matplotlib import cbook
    from skimage import data

    rgb = {"grace_hopper": np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")),
           "astronaut": data.astronaut()}
    return {name: torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1.0 for name, image in rgb.items()}


def median_seconds(segmenter: SubjectSegmenter, image: torch.Tensor, repeats: int) -> float:
    segmenter.matte(image)  # warm-up (the GPU compiles its kernels on the first run)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        segmenter.matte(image)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(repeats: int = 5) -> None:
    cpu, gpu, gpu32 = SubjectSegmenter(), SubjectSegmenter(device="gpu"), SubjectSegmenter(device="gpu", enforce_f32=True)
    print(f"CPU: {cpu.describe().runtime} on {cpu.describe().device}\nGPU: {gpu.describe().runtime} on {gpu.describe().device}")
    for name, image in photos().items():
        m_cpu, m_gpu, m_gpu32 = cpu.matte(image), gpu.matte(image), gpu32.matte(image)
        height, width = m_cpu.shape[-2:]
        face = m_cpu[..., int(0.2 * height):int(0.5 * height), int(0.35 * width):int(0.65 * width)]
        corners = torch.cat([m_cpu[..., :height // 8, :width // 8].flatten(), m_cpu[..., :height // 8, -width // 8:].flatten()])
        d16, d32 = (m_gpu - m_cpu).abs(), (m_gpu32 - m_cpu).abs()
        print(f"{name} {height} x {width}: face box > 0.5 {float((face > 0.5).float().mean()):.3f}, top corners mean "
              f"{float(corners.mean()):.2e}; GPU fp16 vs CPU max {float(d16.max()):.4f} mean {float(d16.mean()):.2e} IoU "
              f"{iou(m_gpu, m_cpu):.5f}; GPU fp32 vs CPU max {float(d32.max()):.2e}; median s per matte: CPU "
              f"{median_seconds(cpu, image, repeats):.4f}, GPU {median_seconds(gpu, image, repeats):.4f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
