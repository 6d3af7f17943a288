"""decode_splits.choose_splits on the H200's 132 SMs (Hkv=8, 128-key blocks), the shapes bench/probe_splits.py
measured."""

from attnc.runtime.decode_splits import MAX_SPLITS, choose_splits

SMS = 132


def test_contiguous_splits_fill_one_wave():
    assert choose_splits(64, 256, SMS) == 2  # B=8, 32k keys: 128 programs of 132
    assert choose_splits(8, 1024, SMS) == 14  # B=1, 128k keys: 112 programs
    assert choose_splits(512, 32, SMS) == 1  # B=64, 4k keys: the programs fill the GPU already
    assert choose_splits(8, 1, SMS) == 1  # one key block: nothing to split


def test_paged_splits_fill_several_waves_of_long_splits():
    assert choose_splits(64, 256, SMS, paged_block_n=128) == 8  # 4096 keys a split
    assert choose_splits(8, 1024, SMS, paged_block_n=128) == 32
    assert choose_splits(512, 32, SMS, paged_block_n=128) == 1
    assert choose_splits(1, 1 << 20, SMS, paged_block_n=128) == MAX_SPLITS
