"""doctor: a training doctor for PyTorch."""

__version__ = "0.1.0"


def watch(model, optimizer=None, **kwargs):
    """Monitor your own training loop with doctor's rules: `with doctor.watch(model, optimizer) as mon:` then
    `mon.step(loss)` after each optimizer step. See doctor.monitor.Monitor for every option."""
    from doctor.monitor import Monitor  # torch is imported only here, not by `import doctor`

    return Monitor(model, optimizer, **kwargs)


def __getattr__(name):
    if name == "DoctorHalt":  # the exception halt_on raises, importable without torch until it is asked for
        from doctor.monitor import DoctorHalt

        return DoctorHalt
    raise AttributeError(f"module 'doctor' has no attribute {name!r}")
