"""How the reproduce commands refuse: one line on stderr, exit status 2."""


class CommandLineError(SystemExit):
    """A bad command line, or data it cannot find: one line on stderr, exit status 2."""

    def __init__(self, message):
        super().__init__(2)
        self.message = message

    def __str__(self):
        return self.message


def fail(message):
    """Raises `CommandLineError` with `message` after the program's name."""
    raise CommandLineError(f"python -m reproduce: error: {message}")


def not_prepared(*errors):
    """The advice for one or more `zoo.data.DatasetNotPrepared`: which datasets are not
    prepared where, how to prepare them and point the command at them."""
    names = list(dict.fromkeys(repr(e.name) for e in errors))
    builds = " ".join(dict.fromkeys(e.tfds_name for e in errors))
    which = f"dataset {names[0]} is" if len(names) == 1 else f"datasets {', '.join(names)} are"
    return (f"{which} not prepared under {errors[0].data_dir}: on a machine with network run "
            f"`tfds build {builds} --data_dir DIR`, then pass --data-dir DIR (or set TFDS_DATA_DIR).")
