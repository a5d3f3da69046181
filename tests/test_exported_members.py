from __future__ import annotations

import inspect

import mediajobs as mj


def test_all_is_sorted_and_complete() -> None:
    assert mj.__all__ == sorted(mj.__all__)
    public = {
        name
        for name in dir(mj)
        if not name.startswith("_") and not inspect.ismodule(getattr(mj, name))
    } - {"annotations"}
    assert public == set(mj.__all__) - {"__version__"}


def test_every_error_derives_from_base() -> None:
    errors = [getattr(mj, n) for n in mj.__all__ if n.endswith("Error")]
    assert len(errors) == 23
    assert all(issubclass(e, mj.MediaJobsError) for e in errors)
    assert issubclass(mj.APITimeoutError, mj.APIConnectionError)
    for cls in (mj.JobFailedError, mj.JobCancelledError, mj.JobExpiredError):
        assert issubclass(cls, mj.JobError)


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def _shape(sig: inspect.Signature) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def test_sync_and_async_clients_expose_the_same_methods() -> None:
    sync, asyn = _public_methods(mj.Client), _public_methods(mj.AsyncClient)
    assert set(sync) - {"close"} == set(asyn) - {"aclose"}
    assert "close" in sync and "aclose" in asyn
    for name in set(sync) - {"close"}:
        assert _shape(sync[name]) == _shape(asyn[name]), name
    assert _shape(inspect.signature(mj.Client.__init__)) == _shape(
        inspect.signature(mj.AsyncClient.__init__)
    )


def test_sync_and_async_jobs_expose_the_same_methods() -> None:
    sync, asyn = _public_methods(mj.Job), _public_methods(mj.AsyncJob)
    assert set(sync) == set(asyn) >= {"refresh", "wait", "cancel", "download", "to_dict"}
    for name in sync:
        assert _shape(sync[name]) == _shape(asyn[name]), name
    for name in ("refresh", "wait", "cancel", "download"):
        assert inspect.iscoroutinefunction(getattr(mj.AsyncJob, name))
        assert not inspect.iscoroutinefunction(getattr(mj.Job, name))


def test_public_methods_document_what_they_raise() -> None:
    for cls in (mj.Client, mj.AsyncClient, mj.Job, mj.AsyncJob):
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            if name.startswith("_") or name in {"close", "aclose", "to_dict", "job_from_dict"}:
                continue
            assert "Raises:" in (member.__doc__ or ""), f"{cls.__name__}.{name}"
