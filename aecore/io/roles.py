"""Column roles: which columns are features, which are the label, the time, or ignored."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

ROLE_NAMES = ("feature", "categorical", "time", "label", "id", "ignore")


@dataclass
class ColumnRoles:
    """The role of every column of a frame.

    ``features`` are numeric model inputs, ``categorical`` are text inputs that get one-hot
    encoded, ``time`` orders the rows (and is never a model input), ``label`` holds known
    normal/anomaly marks (never a model input), ``ids`` identify rows (never a model input,
    carried into every scored view and export so rows can be joined back to the source),
    ``ignore`` is dropped (constants, free text).
    """

    features: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    time: str | None = None
    label: str | None = None
    ignore: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    @property
    def inputs(self) -> list[str]:
        """Model input columns, in order: numeric features then categorical ones."""
        return [*self.features, *self.categorical]

    @property
    def named(self) -> list[str]:
        """Every column these roles name, once each: inputs, time, label, ids, ignored."""
        columns = [*self.features, *self.categorical, self.time, self.label, *self.ids,
                   *self.ignore]  # fmt: skip
        return [c for c in dict.fromkeys(columns) if c is not None]

    def role_of(self, column: str) -> str:
        if column in self.features:
            return "feature"
        if column in self.categorical:
            return "categorical"
        if column == self.time:
            return "time"
        if column == self.label:
            return "label"
        if column in self.ids:
            return "id"
        return "ignore"

    def as_mapping(self, columns: list[str]) -> dict[str, str]:
        """``{column: role}`` for every column given, in that order."""
        return {column: self.role_of(column) for column in columns}

    @classmethod
    def from_mapping(cls, mapping: dict[str, str]) -> ColumnRoles:
        """Build roles from ``{column: role}``; at most one time and one label column."""
        from aecore.errors import AecoreError

        roles = cls()
        for column, role in mapping.items():
            if role not in ROLE_NAMES:
                raise AecoreError(
                    f"Unknown role {role!r} for column {column!r}; "
                    f"choose one of {', '.join(ROLE_NAMES)}."
                )
            if role == "feature":
                roles.features.append(column)
            elif role == "categorical":
                roles.categorical.append(column)
            elif role == "ignore":
                roles.ignore.append(column)
            elif role == "id":
                roles.ids.append(column)
            else:
                if getattr(roles, role) is not None:
                    raise AecoreError(
                        f"Only one {role} column is allowed, but both "
                        f"{getattr(roles, role)!r} and {column!r} were given that role."
                    )
                setattr(roles, role, column)
        return roles

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ColumnRoles:
        return cls(
            features=list(data.get("features", [])),
            categorical=list(data.get("categorical", [])),
            time=data.get("time"),
            label=data.get("label"),
            ignore=list(data.get("ignore", [])),
            ids=list(data.get("ids", [])),
        )
