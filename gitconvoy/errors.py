"""Exceptions that carry a one-line message and the exit code the CLI returns."""

from __future__ import annotations

EXIT_OK = 0
EXIT_USER = 1
EXIT_USAGE = 2
EXIT_RACE = 3


class ConvoyError(Exception):
    """A user-facing failure: printed as one line, never as a traceback."""

    exit_code = EXIT_USER

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0])


class SchemaError(ConvoyError):
    """A state file that does not parse or does not match the schema."""

    def __init__(self, path: str, field: str | None, expected: str) -> None:
        where = f"{path}: field '{field}'" if field else path
        super().__init__(f"{where}: {expected}")
        self.path = path
        self.field = field
        self.expected = expected

    def __reduce__(self) -> tuple[type, tuple[str, str | None, str]]:
        """Picklable with its fields (the default passes only the message to __init__)."""
        return (type(self), (self.path, self.field, self.expected))


class NewerSchema(SchemaError):
    """convoy.yaml names a schema version newer than this gitconvoy: reads may go on (with a
    warning), writes and merges must not, or they would drop what they do not understand."""

    def __init__(self, path: str, version: int, supported: int) -> None:
        super().__init__(path, "schema", f"version {version} is newer than this gitconvoy "
                         f"understands ({supported}); upgrade gitconvoy")
        self.version = version
        self.supported = supported

    def __reduce__(self) -> tuple[type, tuple[str, int, int]]:  # type: ignore[override]
        return (type(self), (self.path, self.version, self.supported))

    def upgrade_hint(self, program_version: str) -> str:
        return (f"{self.path}: schema {self.version} is newer than this gitconvoy "
                f"{program_version} understands (schema {self.supported}): upgrade gitconvoy")


class LostRace(ConvoyError):
    """The state ref kept moving under us: every retry lost the compare-and-swap."""

    exit_code = EXIT_RACE
