"""lago_sync and lago_async in a real Jupyter kernel (ipykernel driven by nbclient).

ipykernel runs an asyncio loop on the main thread, so a blocking call there is a call from a
running loop: lago_sync must still work in a cell (its portal thread does the I/O), and
lago_async must work with top-level ``await``. Run by ``nox -s notebook``; skipped where the
notebook packages are not installed.
"""

from __future__ import annotations

import textwrap

import pytest

nbclient = pytest.importorskip("nbclient", reason="needs the notebook extra (nox -s notebook)")
nbformat = pytest.importorskip("nbformat", reason="needs the notebook extra (nox -s notebook)")
pytest.importorskip("ipykernel", reason="needs the notebook extra (nox -s notebook)")

CELLS = [
    """
    from lago_async.testing import FakeLago
    server = FakeLago.in_thread()
    fake = server.__enter__()
    """,
    """
    from lago_sync import Lago
    lago = Lago(api_key=fake.api_key, base_url=fake.base_url)
    created = lago.customers.create(external_id="acme", name="Acme", currency="EUR")
    lago.events.create(transaction_id="nb-1", code="calls", external_subscription_id="sub_1")
    print("sync:", created.external_id, lago.events.get("nb-1").transaction_id)
    """,
    """
    with lago.events.ingestor(flush_interval=0.01) as ingest:
        for n in range(50):
            ingest.send({"transaction_id": f"nb-bulk-{n}", "code": "calls",
                         "external_subscription_id": "sub_1"})
    print("ingested:", ingest.stats.delivered)
    """,
    """
    from lago_async import AsyncLago
    async with AsyncLago(api_key=fake.api_key, base_url=fake.base_url) as alago:
        names = [c.external_id async for c in alago.customers.list()]
    print("async:", names)
    """,
    """
    lago.close()
    server.__exit__(None, None, None)
    print("closed")
    """,
]


def test_both_clients_work_in_a_jupyter_kernel() -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(textwrap.dedent(cell)) for cell in CELLS]
    client = nbclient.NotebookClient(notebook, timeout=60, kernel_name="python3")
    client.execute()
    outputs = [
        "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")
        for cell in notebook.cells
    ]
    errors = [out for cell in notebook.cells for out in cell.outputs if out.output_type == "error"]
    assert errors == []
    assert outputs[1].strip() == "sync: acme nb-1"
    assert outputs[2].strip() == "ingested: 50"
    assert outputs[3].strip() == "async: ['acme']"
    assert outputs[4].strip() == "closed"
