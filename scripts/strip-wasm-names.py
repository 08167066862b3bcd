#!/usr/bin/env python3
"""Removes the `name` custom section from a .wasm file in place.

The section only names functions for stack traces (~130 KiB for the worker). Done by section
surgery rather than wasm-opt, which would re-encode the module with its own feature set.
"""
import sys


def leb128(data: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i


def main(path: str) -> None:
    data = open(path, "rb").read()
    if data[:4] != b"\0asm":
        sys.exit(f"{path}: not a WebAssembly module")
    out, i = bytearray(data[:8]), 8
    while i < len(data):
        start = i
        section_id = data[i]
        size, body = leb128(data, i + 1)
        end = body + size
        if section_id == 0:
            name_len, name_start = leb128(data, body)
            if data[name_start:name_start + name_len] == b"name":
                i = end
                continue
        out += data[start:end]
        i = end
    open(path, "wb").write(out)


if __name__ == "__main__":
    main(sys.argv[1])
