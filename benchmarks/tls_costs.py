"""What TLS costs in Python's ssl module, in memory: the floor under the broker's TLS path.

Usage: python benchmarks/tls_costs.py [--mib N] [--json FILE]

A server and a client ``SSLObject`` joined by memory BIOs (the pair asyncio's TLS transport uses), with
logq's development certificates (EC P-256), so no socket and no event loop is measured:
- decryption, per KiB, of 16 KiB records fed 256 KiB at a time (what asyncio reads from a socket at
  once), for TLS 1.3 (its suites cannot be chosen from Python: OpenSSL's server picks AES-256-GCM) and
  TLS 1.2 with AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305;
- the cost of one record by its size (12 B, 1 KiB, 16 KiB): what a peer pays for each of a client's
  writes, since each ``SSL_write`` is at least one record;
- encryption, per KiB, of a 4 MiB answer written at once or in 256 KiB slices (then read out of the
  memory BIO, as asyncio does before sending).
Each figure is the median of several passes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ssl  # noqa: E402

from logq.security.certs import DevCertificates, write_dev_certificates  # noqa: E402

KiB = 1024
MiB = 1024 * KiB
PASSES = 5
CIPHERS: dict[str, tuple[ssl.TLSVersion, str | None]] = {
    "TLS 1.3 (TLS_AES_256_GCM_SHA384)": (ssl.TLSVersion.TLSv1_3, None),
    "TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256": (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256"),
    "TLS 1.2 ECDHE-ECDSA-AES256-GCM-SHA384": (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES256-GCM-SHA384"),
    "TLS 1.2 ECDHE-ECDSA-CHACHA20-POLY1305": (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-CHACHA20-POLY1305"),
}


class Pair:
    """A connected server and client over memory BIOs."""

    def __init__(self, certs: DevCertificates, version: ssl.TLSVersion, cipher: str | None) -> None:
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(certs.broker_cert, certs.broker_key)
        if cipher is not None:
            server_context.set_ciphers(cipher)
        client_context = ssl.create_default_context(cafile=str(certs.ca))
        client_context.minimum_version = client_context.maximum_version = version
        self.server_in, self.server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.client_in, self.client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.server = server_context.wrap_bio(self.server_in, self.server_out, server_side=True)
        self.client = client_context.wrap_bio(self.client_in, self.client_out, server_hostname="127.0.0.1")
        for _ in range(10):
            for side in (self.client, self.server):
                with contextlib.suppress(ssl.SSLWantReadError):  # until the peer's next message
                    side.do_handshake()
            self.server_in.write(self.client_out.read())
            self.client_in.write(self.server_out.read())
        self.client.write(b"x")  # the server's first read also takes TLS 1.3's session tickets
        self.server_in.write(self.client_out.read())
        assert self.server.read(1) == b"x"

    def ciphertext(self, write_size: int, total: int) -> list[bytes]:
        """The client's records for ``total`` bytes written ``write_size`` at a time, in 256 KiB reads."""
        payload = b"p" * write_size
        stream = bytearray()
        for _ in range(total // write_size):
            self.client.write(payload)
            stream += self.client_out.read()
        return [bytes(stream[i : i + 256 * KiB]) for i in range(0, len(stream), 256 * KiB)]

    def decrypt(self, reads: list[bytes]) -> tuple[int, int]:
        """Feed the reads and decrypt everything into one buffer, as asyncio's buffered path does:
        (bytes, records)."""
        buffer = memoryview(bytearray(MiB))
        read = self.server.read
        total = records = 0
        for piece in reads:
            self.server_in.write(piece)
            while True:
                try:
                    n = read(MiB, buffer)
                except ssl.SSLWantReadError:
                    break
                total += n
                records += 1
        return total, records


def timed(run: Callable[[], float]) -> float:
    return statistics.median(run() for _ in range(PASSES))


def decryption(certs: DevCertificates, mib: int) -> dict[str, float]:
    out = {}
    for name, (version, cipher) in CIPHERS.items():
        pair = Pair(certs, version, cipher)

        def one(pair: Pair = pair) -> float:
            reads = pair.ciphertext(16 * KiB, mib * MiB)
            began = time.perf_counter()
            total, _ = pair.decrypt(reads)
            return (time.perf_counter() - began) / (total / KiB) * 1e6

        out[name] = timed(one)
    return out


def per_record(certs: DevCertificates, count: int = 20_000) -> dict[str, float]:
    out = {}
    version, cipher = CIPHERS["TLS 1.3 (TLS_AES_256_GCM_SHA384)"]
    for size in (12, KiB, 16 * KiB):
        pair = Pair(certs, version, cipher)

        def one(pair: Pair = pair, size: int = size) -> float:
            reads = pair.ciphertext(size, size * count)
            began = time.perf_counter()
            _, records = pair.decrypt(reads)
            return (time.perf_counter() - began) / records * 1e6

        out[f"{size} B records"] = timed(one)
    return out


def encryption(certs: DevCertificates, mib: int) -> dict[str, float]:
    out = {}
    version, cipher = CIPHERS["TLS 1.3 (TLS_AES_256_GCM_SHA384)"]
    answer = memoryview(b"a" * (4 * MiB))
    for slice_size in (4 * MiB, 256 * KiB):
        pair = Pair(certs, version, cipher)

        def one(pair: Pair = pair, slice_size: int = slice_size) -> float:
            began = time.perf_counter()
            for _ in range(max(1, mib // 4)):
                for i in range(0, answer.nbytes, slice_size):
                    pair.server.write(answer[i : i + slice_size])
                    pair.server_out.read()
            return (time.perf_counter() - began) / (max(1, mib // 4) * 4 * KiB) * 1e6

        out[f"4 MiB answer in {slice_size // KiB} KiB writes"] = timed(one)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mib", type=int, default=32, help="MiB per pass (default 32)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="logq-tls-costs-") as tmp:
        certs = write_dev_certificates(Path(tmp) / "certs", [])
        results = {
            "decrypt_us_per_kib": decryption(certs, args.mib),
            "decrypt_us_per_record": per_record(certs),
            "encrypt_us_per_kib": encryption(certs, args.mib),
        }
    print(f"Python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}")
    print("| what | cost |", "|---|---:|", sep="\n")
    for name, us in results["decrypt_us_per_kib"].items():
        print(f"| decrypt, 16 KiB records, {name} | {us:.3f} us/KiB |")
    for name, us in results["decrypt_us_per_record"].items():
        print(f"| decrypt one record, {name} | {us:.2f} us |")
    for name, us in results["encrypt_us_per_kib"].items():
        print(f"| encrypt, {name} | {us:.3f} us/KiB |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
