"""A confined kernel started as ``nbgrader autograde`` starts one (cold, or forked by a kernel zygote), running one
cell: for ``test_warm.py``, and for ``test_strays.py``, which puts :func:`kernel_run`'s source into a script that runs
as another grader (so it imports what it needs itself)."""

from __future__ import annotations


async def kernel_run(box, zygote, code: str) -> str:
    """What ``code`` printed in a kernel for the sandbox ``box`` (forked by ``zygote``; started cold for None)."""
    from kvkit.course.autograde import ConfinedKernelManager

    km = ConfinedKernelManager(box, 1536 * 1024 * 1024, zygote=zygote)
    await km.start_kernel(env=box.child_env(), cwd=str(box.workdir))
    printed = []
    try:
        client = km.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=60)
            await client.execute_interactive(code, timeout=60, output_hook=lambda msg: printed.append(
                msg["content"].get("text", "") or str(msg["content"].get("evalue", ""))))
        finally:
            client.stop_channels()
    finally:
        await km.shutdown_kernel()
    return "".join(printed)
