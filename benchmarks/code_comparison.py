"""Compare channel codes on channel realisations recorded from real attacks.

The tile's 400 code slots are a channel: after an attack, each slot's folded soft
score, signed by the bit that was written, is a draw from that channel (positive =
read correctly). This script records those signed scores from the robustness photos
under hard attacks (grid known: the aligned grid, or the true offset of a crop), then
sends random words of each candidate code through the same realisations (the slots
randomly permuted, as a keyed layout would) and counts exact decodes. Decoding
succeeds only if the CRC-32 of the decoded data matches, as in provmark.

Candidates (all fill the same 400 slots with 9 data bytes + CRC-32):

* ``RS(25,13) + K=7 r1/2``: the code provmark used until this comparison;
* ``RS(15,13) + K=9 r1/4``: the code it uses now (:mod:`provmark._codec`);
* ``RS(25,13) x2``: the first layout (each RS bit sent twice, soft scores added).

Usage::

    python benchmarks/code_comparison.py                 # 512 and 1024, 3 payloads
    python benchmarks/code_comparison.py --sizes 512 --trials 8
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import reedsolo

sys.path.insert(0, str(Path(__file__).parent))

ATTACKS = (("WebP q50", "webp", {"quality": 50}), ("WebP q40", "webp", {"quality": 40}),
           ("JPEG q20", "jpeg", {"quality": 20}), ("blur s=2", "gaussian_blur", {"sigma": 2.0}),
           ("JPEG60+crop71%+bright0.5", "combined", None))


def attack_with_grid(marked, attack, params, rng):
    """``(attacked copy, grid)``; ``grid = (oy, ox, ty, tx)`` is where the embedding
    grid lies in the copy (the aligned one, or from the combined attack's crop)."""
    from provmark import attacks as A

    if attack != "combined":
        return A.apply(attack, marked, rng=rng, **params), (0, 0, 0, 0)
    h, w = marked.shape[:2]
    top = int(rng.integers(0, h - round(h * 0.71) + 1))
    left = int(rng.integers(0, w - round(w * 0.71) + 1))
    attacked = A.apply("combined", marked, quality=60, crop_side=0.71, brightness_factor=0.5,
                       position=(top, left))
    oy, ox = -top % 16, -left % 16
    return attacked, (oy, ox, (top + oy) // 16 % 32, (left + ox) // 16 % 32)


def record(job):
    """Signed per-slot scores of one photo at one size under every attack."""
    import provmark
    from provmark import _codec
    from provmark._detect import read_grid, read_luma
    from provmark._keys import normalize_key
    from provmark._layout import keyed_layout
    from robustness import SIZES, load_photo

    name, size, seed, n_payloads = job
    img = load_photo(name, SIZES[size])
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_payloads):
        payload = provmark.Payload(int(rng.integers(0, 2**24)), int(rng.integers(0, 2**40)))
        k = normalize_key(f"code-comparison-{seed}-{i}")
        layout = keyed_layout(k)
        sign = 1.0 - 2.0 * layout.tile_bits(_codec.encode_channel(payload, k)).reshape(-1)
        marked = provmark.embed(img, payload, key=k)
        for label, attack, params in ATTACKS:
            attacked, grid = attack_with_grid(marked, attack, params, rng)
            score, _, _ = read_grid(read_luma(attacked), k, *grid)
            flat = score.reshape(-1)
            signed = (flat * sign)[layout.code_slots]
            out.append((label, size, signed / (np.mean(np.abs(flat)) or 1.0)))
    return out


class Concatenated:
    """9 data bytes + CRC-32, RS parity, then a punctured convolutional code (or
    repetition when ``generators`` is None), decoded by Viterbi and RS with erasures."""

    def __init__(self, parity, schedule, constraint=None, generators=None, n_channel=400):
        self.parity, self.schedule = parity, schedule
        self.rs = reedsolo.RSCodec(parity, nsize=255)
        self.n_bits = 8 * (13 + parity)
        self.k, self.gens, self.n_channel = constraint, generators, n_channel
        if generators is None:
            assert 2 * self.n_bits == n_channel
            return
        from provmark.kernels import viterbi_decode

        self._viterbi = viterbi_decode
        tail, rate = constraint - 1, len(generators)
        self.n_states = 1 << tail
        self.next_state = np.zeros((self.n_states, 2), np.int64)
        self.outputs = np.zeros((self.n_states, 2, rate), np.int64)
        for s in range(self.n_states):
            for b in range(2):
                reg = (b << tail) | s
                self.outputs[s, b] = [bin(reg & g).count("1") & 1 for g in generators]
                self.next_state[s, b] = reg >> 1
        n_mother = rate * (self.n_bits + tail)
        punct = np.round(np.linspace(0, n_mother - 1, n_mother - n_channel + 2)[1:-1])
        self.kept = np.setdiff1d(np.arange(n_mother), punct.astype(np.int64))
        self.n_mother = n_mother

    def _mother(self, bits):
        tail, rate = self.k - 1, len(self.gens)
        seq = np.concatenate([bits.astype(np.int64), np.zeros(tail, np.int64)])
        coded = np.empty(rate * seq.size, np.int64)
        for j, g in enumerate(self.gens):
            taps = np.array([(g >> (tail - i)) & 1 for i in range(self.k)])
            coded[j::rate] = np.convolve(seq, taps)[:seq.size] & 1
        return coded

    def encode(self, data: bytes) -> np.ndarray:
        word = np.frombuffer(bytes(self.rs.encode(data + zlib.crc32(data).to_bytes(4, "big"))),
                             np.uint8)
        bits = np.unpackbits(word)
        if self.gens is None:
            return np.concatenate([bits, bits])
        return self._mother(bits)[self.kept]

    def decode(self, llr: np.ndarray) -> bytes | None:
        """``llr`` positive = bit 0; returns the data bytes or None."""
        if self.gens is None:
            s = llr[:self.n_bits] + llr[self.n_bits:]
            bits, rel = (s < 0).astype(np.int64), np.abs(s)
        else:
            full = np.zeros(self.n_mother)
            full[self.kept] = llr
            path = np.empty(self.n_bits + self.k - 1, np.int64)
            self._viterbi(full, self.next_state, self.outputs, path)
            bits = path[:self.n_bits]
            agree = full * (1.0 - 2.0 * self._mother(bits))
            rate = len(self.gens)
            span = rate * self.k
            rel = np.convolve(agree, np.ones(span))[span - 1:][0:rate * self.n_bits:rate]
        word = np.packbits(bits.astype(np.uint8))
        order = np.argsort(rel.reshape(-1, 8).min(axis=1), kind="stable")
        for e in self.schedule:
            erase = sorted(int(i) for i in order[:e])
            try:
                msg, full_word, _ = self.rs.decode(bytearray(word.tobytes()), erase_pos=erase or None)
            except reedsolo.ReedSolomonError:
                continue
            errors = np.frombuffer(bytes(full_word), np.uint8) != word
            errors[erase] = False
            if 2 * int(errors.sum()) + e > self.parity:
                continue
            msg = bytes(msg)
            if zlib.crc32(msg[:9]).to_bytes(4, "big") == msg[9:]:
                return msg[:9]
        return None


def candidates():
    return {
        "RS(25,13) x2": Concatenated(12, (0, 2, 4, 6, 8, 10)),
        "RS(25,13) + K=7 r1/2": Concatenated(12, (0, 2, 4, 6, 8, 10), 7, (0o171, 0o133)),
        "RS(15,13) + K=9 r1/4": Concatenated(2, (0, 1), 9, (0o463, 0o535, 0o733, 0o745)),
    }


def main(argv=None) -> int:
    from robustness import PHOTOS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["512", "1024"], choices=["512", "1024", "1080p"])
    ap.add_argument("--payloads", type=int, default=3)
    ap.add_argument("--trials", type=int, default=4, help="random words per realisation")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--ber", type=float, nargs=2, default=(0.05, 0.35),
                    help="keep realisations whose raw error rate is in this range (the others "
                         "decode with every code, or with none)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    jobs = [(n, s, 3000 + 31 * j, args.payloads) for s in args.sizes for j, n in enumerate(PHOTOS)]
    realisations = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for rows in pool.map(record, jobs):
            realisations += rows
    codes = candidates()
    rng = np.random.default_rng(0)
    wins: dict[tuple, Counter] = defaultdict(Counter)
    used = 0
    for label, size, signed in realisations:
        ber = float(np.mean(signed < 0))
        if not args.ber[0] <= ber <= args.ber[1]:
            continue
        used += 1
        for _ in range(args.trials):
            chan = signed[rng.permutation(signed.size)]
            data = rng.bytes(9)
            for name, code in codes.items():
                llr = (1.0 - 2.0 * code.encode(data)) * chan
                ok = code.decode(llr) == data
                wins[(label, size)][name] += ok
                wins[("all", "")][name] += ok
            wins[(label, size)]["n"] += 1
            wins[("all", "")]["n"] += 1
    names = list(codes)
    print(f"Command: python benchmarks/code_comparison.py --sizes {' '.join(args.sizes)} "
          f"--payloads {args.payloads} --trials {args.trials}")
    print(f"{len(realisations)} realisations recorded, {used} with raw error rate in "
          f"[{args.ber[0]}, {args.ber[1]}], {time.perf_counter() - t0:.0f} s\n")
    print("| attack | size | words | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for (label, size), c in sorted(wins.items(), key=lambda kv: (kv[0][0] == "all", kv[0])):
        print(f"| {label} | {size} | {c['n']} | " + " | ".join(str(c[n]) for n in names) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
