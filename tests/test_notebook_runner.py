"""The notebook runner: no stall behind an Output widget, a stall is an error, times per cell."""

from __future__ import annotations

import asyncio
import time

import nbformat
import pytest
import zmq
import zmq.asyncio
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from tools import notebook_runner
from tools.notebook_runner import CellStallError, CellTime, RunResult, execute, format_table


def _notebook(tmp_path, *sources: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


# --- the cause, without a kernel: a send on the shell socket while its reply is awaited ---------


async def _reply_seen_while_sending(channel_class) -> bool:
    """nbclient's situation in miniature: it polls the shell socket for a reply; the reply arrives
    while nbclient is busy (here: a blocking sleep); then it sends on that socket (an Output
    widget's state). True if the poll wakes for the reply within 2 s (its own timeout is 10 s)."""
    session = Session(key=b"k")
    server = zmq.Context.instance().socket(zmq.ROUTER)
    client = zmq.asyncio.Context.instance().socket(zmq.DEALER)
    try:
        port = server.bind_to_random_port("tcp://127.0.0.1")
        client.connect(f"tcp://127.0.0.1:{port}")
        channel = channel_class(client, session)
        channel.send(session.msg("execute_request", {"code": ""}))
        ident, *frames = server.recv_multipart()
        request = session.deserialize(session.feed_identities(frames)[1])
        waiting = asyncio.ensure_future(channel.get_msg(timeout=10))
        await asyncio.sleep(0.05)  # the poll is registered
        session.send(server, "execute_reply", {"status": "ok"}, parent=request, ident=ident)
        time.sleep(0.1)  # the reply lands while the event loop is busy elsewhere
        channel.send(session.msg("comm_msg", {"comm_id": "w", "data": {}}))
        try:
            reply = await asyncio.wait_for(waiting, 2)
        except asyncio.TimeoutError:
            return False
        return reply["msg_type"] == "execute_reply"
    finally:
        client.close(linger=0)
        server.close(linger=0)


def test_jupyter_clients_shell_channel_misses_a_reply_that_lands_before_a_send():
    # The upstream behaviour behind the hang (jupyter/nbclient#312). If this starts failing, the
    # upstream fix has landed and the runner's _ShellChannel can go.
    assert not asyncio.run(_reply_seen_while_sending(AsyncZMQSocketChannel))


def test_the_runners_shell_channel_sees_it():
    assert asyncio.run(_reply_seen_while_sending(notebook_runner._ShellChannel))


# --- the same in a real kernel: big figures in Output widgets ----------------------------------

BIG_OUTPUT_CELLS = [
    "import ipywidgets as W\nfrom IPython.display import HTML, display\n\n"
    "BIG = HTML('x' * 3_000_000)  # about the size of plotly.js inlined in an HTML export"
] + ["out = W.Output()\ndisplay(out)\nwith out:\n    display(BIG)"] * 6


@pytest.mark.timeout(120)
def test_big_outputs_in_output_widgets_do_not_stall(tmp_path):
    path = _notebook(tmp_path, *BIG_OUTPUT_CELLS)
    nb, result = execute(path, timeout=20, max_wait=2)  # a stall would wait out the 20 s: an error
    assert [c.index for c in result.cells] == list(range(7))
    captured = [
        s
        for s in nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"].values()
        if s["model_name"] == "OutputModel"
    ]
    assert len(captured) == 6 and all(len(s["state"]["outputs"]) == 1 for s in captured)


@pytest.mark.timeout(120)
def test_without_the_fix_the_same_notebook_stalls_and_the_runner_says_so(tmp_path, monkeypatch):
    # Today's jupyter_client channel: each big cell loses its reply now and then (most of the time
    # here), and the poll wakes only at the per-cell timeout. Six chances make a stall near certain.
    monkeypatch.setattr(notebook_runner._ShellChannel, "send", AsyncZMQSocketChannel.send)
    path = _notebook(tmp_path, *BIG_OUTPUT_CELLS)
    with pytest.raises(CellStallError, match="lost wake-up"):
        execute(path, timeout=4, max_wait=2)


@pytest.mark.timeout(120)
def test_a_slow_cell_is_not_a_stall(tmp_path):
    path = _notebook(tmp_path, "import time\ntime.sleep(3)", "print('ok')")
    nb, result = execute(path, timeout=30, max_wait=1)
    slow, quick = result.cells
    assert slow.kernel_s >= 3 > quick.kernel_s
    assert result.slowest is slow and result.max_wait <= 1
    assert nb.cells[1].outputs[0]["text"] == "ok\n"


@pytest.mark.timeout(120)
def test_a_cell_that_hangs_times_out(tmp_path):
    path = _notebook(tmp_path, "import time\ntime.sleep(30)")
    with pytest.raises(CellTimeoutError):
        execute(path, timeout=3)


@pytest.mark.timeout(120)
def test_an_error_fails_the_run_once(tmp_path):
    marker = tmp_path / "runs"
    path = _notebook(
        tmp_path,
        f"with open({str(marker)!r}, 'a') as f:\n    f.write('x')\nraise ValueError('boom')",
    )
    with pytest.raises(CellExecutionError, match="boom"):
        execute(path, timeout=30)
    assert marker.read_text() == "x"


def test_time_table_shows_budget_slowest_cell_and_lag():
    table = format_table(
        [
            RunResult("01_mixture_of_experts", 70.0, False, [CellTime(3, 1.0, 0.0, 0.01)]),
            RunResult(
                "04_grpo", 95.0, True, [CellTime(5, 40.0, 0.1, 0.2), CellTime(9, 2, 0.5, 0.25)]
            ),
        ]
    )
    rows = table.splitlines()
    assert rows[1].split() == [
        "01_mixture_of_experts",
        "full",
        "70.0",
        "300",
        "yes",
        "3:",
        "1.0",
        "s",
        "0.01",
    ]
    assert rows[2].split() == ["04_grpo", "fast", "95.0", "90", "NO", "5:", "40.0", "s", "0.75"]
