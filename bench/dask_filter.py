"""dask-image's correlate on a tiled TIFF, as bench/huge.py runs it (LocalCluster, 2 worker processes).

    python bench/dask_filter.py IN.tif KERNEL.npy OUT.npy

Reads the TIFF by bands of tiles (tifffile's segment decoder), normalises to [0, 1] float32, correlates
with ``dask_image.ndfilters.correlate`` (mode 'nearest', as convcli's replicate), maps to 8-bit with the
clip mapping and writes a uint8 .npy through per-block writes into a memory map.
"""

from __future__ import annotations

import sys

import numpy as np


def read_band(path: str, band: int) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        height, width = page.shape[:2]
        tile_h, tile_w = page.tilelength, page.tilewidth
        across = -(-width // tile_w)
        rows = min(tile_h, height - band * tile_h)
        out = np.empty((rows, width), dtype=np.uint8)
        handle = tif.filehandle
        for column in range(across):
            index = band * across + column
            handle.seek(page.dataoffsets[index])
            segment, _where, _shape = page.decode(handle.read(page.databytecounts[index]), index)
            left = column * tile_w
            stop = min(width, left + tile_w)
            out[:, left:stop] = segment[0, :rows, : stop - left, 0]
    return out.astype(np.float32) / np.float32(255)


def write_block(block: np.ndarray, path: str, shape: tuple[int, int], block_info=None) -> np.ndarray:  # noqa: ANN001
    (r0, r1), (c0, c1) = block_info[0]["array-location"]
    target = np.load(path, mmap_mode="r+")
    target[r0:r1, c0:c1] = block
    del target
    return np.zeros((1, 1), dtype=np.uint8)


def main() -> None:
    import dask
    import dask.array as da
    import tifffile
    from dask.distributed import Client, LocalCluster
    from dask_image.ndfilters import correlate

    source, kernel_path, target = sys.argv[1:4]
    weights = np.load(kernel_path).astype(np.float32)
    with tifffile.TiffFile(source) as tif:
        page = tif.pages[0]
        height, width = page.shape[:2]
        tile_h = page.tilelength
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        bands = [
            da.from_delayed(
                dask.delayed(read_band)(source, band),
                shape=(min(tile_h, height - band * tile_h), width),
                dtype=np.float32,
            )
            for band in range(-(-height // tile_h))
        ]
        image = da.concatenate(bands, axis=0).rechunk((2048, 2048))
        result = correlate(image, weights, mode="nearest")
        pixels = da.rint(da.clip(result, 0, 1) * np.float32(255)).astype(np.uint8)
        out = np.lib.format.open_memmap(target, mode="w+", dtype=np.uint8, shape=(height, width))
        del out
        pixels.map_blocks(write_block, target, (height, width), dtype=np.uint8, chunks=(1, 1)).compute()


if __name__ == "__main__":
    main()
