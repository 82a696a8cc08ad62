"""pixelrnn_cli: the `pixelrnn` command line, the one package that imports all four floors of the
house (pixelrnn_tf, training, sensor, export).

    app.py        the typer app: parse, call one function, print
    workflows.py  emulate / fine-tune / export / import as importable functions that print nothing
    report.py     how results are printed
    errors.py     the one handler that turns the project's named errors into exit code 2
    progress.py   the progress bar of long emulations
    startup.py    TensorFlow's start-up log lines, hidden unless --verbose
"""
