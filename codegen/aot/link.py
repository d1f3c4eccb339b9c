"""Link kernel objects, Ember's C runtime, the entry point and the weights into one ``.so``."""

from __future__ import annotations

import os
import shutil
import subprocess

from ..errors import CodegenError

RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))


def write_weights_asm(path: str, blob_path: str, symbol: str) -> None:
    """An assembler file embedding ``blob_path`` 64-byte aligned in .rodata as ``symbol``."""
    with open(path, "w") as f:
        f.write(
            f'\t.section .rodata.{symbol},"a"\n\t.balign 64\n\t.globl {symbol}\n\t.hidden {symbol}\n'
            f'\t.type {symbol}, @object\n{symbol}:\n\t.incbin "{blob_path}"\n\t.byte 0\n'
            '\t.section .note.GNU-stack,"",@progbits\n'
        )


def link_library(
    output: str, build_dir: str, sources: list[str], objects: list[str], prefix: str, cc: str = "gcc"
) -> None:
    """Compile ``sources`` and link them with ``objects`` into ``output`` exporting only ``prefix_*``."""
    if shutil.which(cc) is None:
        hint = " (Debian: gcc-aarch64-linux-gnu, see scripts/install_toolchains.sh)" if "aarch64" in cc else ""
        raise CodegenError(f"C compiler '{cc}' not found; it is needed to link the model library{hint}")
    version_script = os.path.join(build_dir, "exports.map")
    with open(version_script, "w") as f:
        f.write(f"{{ global: {prefix}_*; local: *; }};\n")
    # Objects go through a response file: ResNet-50 has ~60 of them, BERT-style models more.
    rsp = os.path.join(build_dir, "objects.rsp")
    with open(rsp, "w") as f:
        f.write("\n".join(objects) + "\n")
    cmd = [
        cc,
        "-shared",
        "-fPIC",
        "-O2",
        "-std=gnu11",
        f"-I{RUNTIME_DIR}",
        f"-I{build_dir}",
        "-o",
        output,
        *sources,
        f"@{rsp}",
        f"-Wl,--version-script={version_script}",
        "-Wl,-z,noexecstack",
        "-Wl,--as-needed",
        "-lpthread",
        "-lm",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CodegenError(f"linking {output} failed:\n{proc.stderr[-4000:]}\ncommand: {' '.join(cmd)}")
