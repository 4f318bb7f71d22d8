"""Seeded sample datasets with planted, labelled anomalies, for demos, tests and benchmarks.

Every generator is a pure function of its arguments: the same seed gives the same frame, byte
for byte once written. The structure of each world (the Markov chain, the services of the
network, the servers of the rack) is fixed; the seed only draws the noise and the anomalies,
so two seeds are two batches from one distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from aecore.errors import AecoreError
from aecore.io.roles import ColumnRoles

ISO_SECONDS = "%Y-%m-%dT%H:%M:%S"

# ---------------------------------------------------------------------------------------------
# 1. Gaussian blobs
# ---------------------------------------------------------------------------------------------

GAUSSIAN_FEATURES = [f"x{i:02d}" for i in range(1, 21)]


def gaussian(seed: int = 0, n_normal: int = 1000, n_anomalies: int = 50) -> pd.DataFrame:
    """Normal rows ~ N(0, 1) and anomalies ~ N(5, 1) in 20 features, shuffled; label 1 = anomaly.

    The easiest possible case: any detector must rank every anomaly first.
    """
    rng = np.random.default_rng(seed)
    n_features = len(GAUSSIAN_FEATURES)
    normal = rng.normal(0.0, 1.0, size=(n_normal, n_features))
    anomalies = rng.normal(5.0, 1.0, size=(n_anomalies, n_features))
    values = np.vstack([normal, anomalies])
    labels = np.r_[np.zeros(n_normal, dtype=np.int64), np.ones(n_anomalies, dtype=np.int64)]
    order = rng.permutation(len(values))
    frame = pd.DataFrame(np.round(values[order], 4), columns=GAUSSIAN_FEATURES)
    frame["label"] = labels[order]
    return frame


# ---------------------------------------------------------------------------------------------
# 2. Network flows
# ---------------------------------------------------------------------------------------------

FLOW_NUMERIC = [
    "duration_s",
    "src_bytes",
    "dst_bytes",
    "packets",
    "dst_port",
    "syn_count",
    "rst_count",
    "mean_iat_ms",
]
FLOW_CATEGORICAL = ["protocol", "service", "tcp_flag"]
FLOW_ATTACKS = ("dos", "portscan", "bruteforce", "exfiltration")


@dataclass(frozen=True)
class _Service:
    """One kind of benign traffic: medians of a lognormal flow and bytes per packet each way."""

    name: str
    share: float
    protocol: str
    ports: tuple[int, ...]
    duration_s: float
    duration_sigma: float
    packets: float
    src_bytes_per_packet: float
    dst_bytes_per_packet: float


_SERVICES = (
    _Service("https", 0.38, "tcp", (443,), 1.5, 1.1, 22, 95, 850),
    _Service("http", 0.16, "tcp", (80, 8080), 0.6, 1.0, 12, 120, 700),
    _Service("dns", 0.22, "udp", (53,), 0.02, 0.7, 2, 36, 110),
    _Service("ssh", 0.04, "tcp", (22,), 90.0, 1.3, 300, 85, 130),
    _Service("smtp", 0.05, "tcp", (25, 587), 2.5, 0.7, 26, 620, 70),
    _Service("ftp", 0.02, "tcp", (21,), 25.0, 0.9, 40, 60, 95),
    _Service("ntp", 0.04, "udp", (123,), 0.03, 0.5, 2, 48, 48),
    _Service("ping", 0.03, "icmp", (0,), 3.0, 0.4, 8, 64, 64),
    _Service("other", 0.06, "tcp", (), 5.0, 1.4, 30, 200, 300),
)
_WELL_KNOWN_PORTS = {port: s.name for s in _SERVICES for port in s.ports if port}

# Attack bursts at the default size: (kind, rows). 240 of 6000 rows = 4 %.
_FLOW_BURSTS = (
    ("dos", 40),
    ("dos", 40),
    ("portscan", 35),
    ("portscan", 35),
    ("bruteforce", 30),
    ("bruteforce", 30),
    ("exfiltration", 10),
    ("exfiltration", 10),
    ("exfiltration", 10),
)
_FLOW_DEFAULT_ROWS = 6000
_FLOW_START = pd.Timestamp("2026-03-02 08:00:00")


def _round_significant(values: np.ndarray, digits: int = 4) -> np.ndarray:
    """Round to ``digits`` significant digits, so the CSV keeps short, exact-looking numbers."""
    return np.array([float(f"{value:.{digits}g}") for value in values], dtype=np.float64)


def _benign_flows(rng: np.random.Generator, n_rows: int) -> dict[str, np.ndarray]:
    """A mixture of services whose duration, packets and bytes rise and fall together."""
    shares = np.array([s.share for s in _SERVICES])
    service_index = rng.choice(len(_SERVICES), size=n_rows, p=shares / shares.sum())
    size = rng.normal(0.0, 1.0, n_rows)  # one latent "how big is this conversation" per flow
    flows = {
        "duration_s": np.zeros(n_rows),
        "src_bytes": np.zeros(n_rows),
        "dst_bytes": np.zeros(n_rows),
        "packets": np.zeros(n_rows),
        "dst_port": np.zeros(n_rows, dtype=np.int64),
        "protocol": np.empty(n_rows, dtype=object),
        "service": np.empty(n_rows, dtype=object),
    }
    for index, service in enumerate(_SERVICES):
        rows = np.flatnonzero(service_index == index)
        k = len(rows)
        z = size[rows]
        duration = service.duration_s * np.exp(service.duration_sigma * z + rng.normal(0, 0.3, k))
        if service.packets <= 2:  # request/response protocols: one or two exchanges
            packets = 2.0 * rng.choice([1, 1, 1, 1, 2], size=k)
        else:
            spread = 0.8 * service.duration_sigma * z + rng.normal(0, 0.25, k)
            packets = np.maximum(3.0, np.round(service.packets * np.exp(spread)))
        src = packets / 2 * service.src_bytes_per_packet * np.exp(rng.normal(0, 0.2, k))
        dst = packets / 2 * service.dst_bytes_per_packet * np.exp(rng.normal(0, 0.2, k))
        if service.name in ("ntp", "ping"):  # fixed-size payloads
            src = packets / 2 * service.src_bytes_per_packet
            dst = packets / 2 * service.dst_bytes_per_packet
        if service.ports:
            ports = rng.choice(service.ports, size=k, p=_port_weights(service.ports))
        else:
            ports = rng.integers(1024, 65536, size=k)
        protocol = np.full(k, service.protocol, dtype=object)
        if service.name == "other":
            protocol[rng.random(k) < 0.3] = "udp"
        flows["duration_s"][rows] = duration
        flows["src_bytes"][rows] = np.round(src)
        flows["dst_bytes"][rows] = np.round(dst)
        flows["packets"][rows] = packets
        flows["dst_port"][rows] = ports
        flows["protocol"][rows] = protocol
        flows["service"][rows] = service.name

    tcp = flows["protocol"] == "tcp"
    flows["syn_count"] = np.where(tcp, 1 + (rng.random(n_rows) < 0.03), 0).astype(np.int64)
    flows["rst_count"] = np.zeros(n_rows, dtype=np.int64)
    flows["tcp_flag"] = np.full(n_rows, "SF", dtype=object)
    outcome = rng.random(n_rows)
    reset = tcp & (outcome < 0.03)  # closed by a reset after a normal exchange
    flows["tcp_flag"][reset] = "RSTO"
    flows["rst_count"][reset] = 1
    unanswered = tcp & (outcome >= 0.03) & (outcome < 0.045)  # SYN retransmits, no answer
    retries = rng.integers(1, 4, size=n_rows)
    flows["tcp_flag"][unanswered] = "S0"
    flows["packets"][unanswered] = retries[unanswered]
    flows["syn_count"][unanswered] = retries[unanswered]
    flows["duration_s"][unanswered] = (2.0 ** retries[unanswered] - 1) * rng.uniform(
        0.9, 1.1, unanswered.sum()
    )
    refused = tcp & (outcome >= 0.045) & (outcome < 0.06)  # port closed: SYN answered by RST
    flows["tcp_flag"][refused] = "REJ"
    flows["packets"][refused] = 2
    flows["syn_count"][refused] = 1
    flows["rst_count"][refused] = 1
    flows["duration_s"][refused] = rng.lognormal(np.log(0.01), 0.8, refused.sum())
    failed = unanswered | refused
    flows["src_bytes"][failed] = 0
    flows["dst_bytes"][failed] = 0
    return flows


def _port_weights(ports: tuple[int, ...]) -> np.ndarray:
    weights = np.array([0.9] + [0.1] * (len(ports) - 1)) if len(ports) > 1 else np.ones(1)
    return weights / weights.sum()


def _attack_flows(rng: np.random.Generator, kind: str, k: int) -> dict[str, np.ndarray]:
    """``k`` flows of one attack burst; each kind has its own numbers and categorical signature."""
    ones = np.ones(k, dtype=np.int64)
    if kind == "dos":  # SYN flood on the web server: tiny half-open flows at huge packet rates
        packets = rng.integers(1, 5, size=k).astype(np.float64)
        return {
            "duration_s": rng.lognormal(np.log(0.0015), 0.5, k) * packets,
            "src_bytes": packets * 60,
            "dst_bytes": np.zeros(k),
            "packets": packets,
            "dst_port": ones * 80,
            "syn_count": packets.astype(np.int64),
            "rst_count": 0 * ones,
            "protocol": np.full(k, "tcp", dtype=object),
            "service": np.full(k, "http", dtype=object),
            "tcp_flag": np.full(k, "S0", dtype=object),
        }
    if kind == "portscan":  # one probe per port, mostly refused
        first = int(rng.integers(1, 20000))
        ports = first + np.sort(rng.choice(np.arange(1, 40000), size=k, replace=False))
        ports = np.where(rng.random(k) < 0.1, rng.choice([21, 22, 25, 80, 443], size=k), ports)
        refused = rng.random(k) < 0.8
        packets = np.where(refused, 2.0, 1.0)
        return {
            "duration_s": rng.lognormal(np.log(0.0004), 0.4, k),
            "src_bytes": np.zeros(k),
            "dst_bytes": np.zeros(k),
            "packets": packets,
            "dst_port": ports.astype(np.int64),
            "syn_count": ones,
            "rst_count": refused.astype(np.int64),
            "protocol": np.full(k, "tcp", dtype=object),
            "service": np.array([_WELL_KNOWN_PORTS.get(p, "other") for p in ports], dtype=object),
            "tcp_flag": np.where(refused, "REJ", "S0").astype(object),
        }
    if kind == "bruteforce":  # one failed login after another: short flows of near-equal size
        service, port = ("ssh", 22) if rng.random() < 0.7 else ("ftp", 21)
        packets = np.round(rng.normal(18, 1.0, k)).clip(14, 22)
        reset = rng.random(k) < 0.6  # the server drops the connection after failed tries
        return {
            "duration_s": rng.normal(2.2, 0.25, k).clip(1.2, 3.5),
            "src_bytes": np.round(rng.normal(1750, 60, k)),
            "dst_bytes": np.round(rng.normal(2650, 80, k)),
            "packets": packets,
            "dst_port": ones * port,
            "syn_count": ones,
            "rst_count": reset.astype(np.int64),
            "protocol": np.full(k, "tcp", dtype=object),
            "service": np.full(k, service, dtype=object),
            "tcp_flag": np.where(reset, "RSTO", "SF").astype(object),
        }
    if kind == "exfiltration":  # long https uploads: the client sends far more than it receives
        src = np.round(rng.lognormal(np.log(6e7), 0.5, k))
        packets = np.round(src / rng.uniform(1300, 1450, k))
        return {
            "duration_s": rng.lognormal(np.log(900), 0.4, k),
            "src_bytes": src,
            "dst_bytes": np.round(packets * rng.uniform(20, 30, k)),
            "packets": packets,
            "dst_port": ones * 443,
            "syn_count": ones,
            "rst_count": 0 * ones,
            "protocol": np.full(k, "tcp", dtype=object),
            "service": np.full(k, "https", dtype=object),
            "tcp_flag": np.full(k, "SF", dtype=object),
        }
    raise AecoreError(f"Unknown attack kind {kind!r}; choose one of {', '.join(FLOW_ATTACKS)}.")


def _place_bursts(rng: np.random.Generator, lengths: list[int], n_rows: int) -> list[int]:
    """Start rows for bursts of these lengths: one burst per equal slice of the rows, no overlap."""
    slot = n_rows // len(lengths)
    starts = []
    for index, length in enumerate(lengths):
        low = index * slot + 1
        high = max(low + 1, (index + 1) * slot - length)
        starts.append(int(rng.integers(low, high)))
    return starts


def network_flows(seed: int = 0, n_rows: int = _FLOW_DEFAULT_ROWS) -> pd.DataFrame:
    """Network flow records in time order; ``label`` is "benign" or the attack type (~4 % of rows).

    Attacks come in short bursts of dos, portscan, bruteforce and exfiltration flows, each
    recognisable by its numbers together with its protocol/service/flag combination.
    """
    if n_rows < 300:
        raise AecoreError(f"network_flows needs at least 300 rows, got {n_rows}.")
    rng = np.random.default_rng(seed)
    flows = _benign_flows(rng, n_rows)
    labels = np.full(n_rows, "benign", dtype=object)
    gaps = 1 + rng.poisson(3.0, size=n_rows)

    order = rng.permutation(len(_FLOW_BURSTS))
    bursts = [_FLOW_BURSTS[i] for i in order]
    scale = n_rows / _FLOW_DEFAULT_ROWS
    lengths = [max(3, round(length * scale * rng.uniform(0.8, 1.2))) for _, length in bursts]
    for (kind, _), start, length in zip(
        bursts, _place_bursts(rng, lengths, n_rows), lengths, strict=True
    ):
        rows = slice(start, start + length)
        for column, values in _attack_flows(rng, kind, length).items():
            flows[column][rows] = values
        labels[rows] = kind
        if kind in ("dos", "portscan"):
            gaps[rows] = 1
        elif kind == "bruteforce":
            gaps[rows] = 1 + rng.poisson(1.0, size=length)
        else:
            gaps[rows] = 1 + rng.poisson(25.0, size=length)

    seconds = np.cumsum(gaps) - gaps[0]
    timestamps = _FLOW_START + pd.to_timedelta(seconds, unit="s")
    iat = 1000.0 * flows["duration_s"] / np.maximum(flows["packets"] - 1, 1)
    iat *= np.exp(rng.normal(0, 0.1, n_rows))
    frame = pd.DataFrame(
        {
            "timestamp": timestamps,
            "flow_id": [f"F{i:06d}" for i in range(1, n_rows + 1)],
            "duration_s": _round_significant(flows["duration_s"]),
            "src_bytes": flows["src_bytes"].astype(np.int64),
            "dst_bytes": flows["dst_bytes"].astype(np.int64),
            "packets": flows["packets"].astype(np.int64),
            "dst_port": flows["dst_port"].astype(np.int64),
            "syn_count": flows["syn_count"].astype(np.int64),
            "rst_count": flows["rst_count"].astype(np.int64),
            "mean_iat_ms": _round_significant(iat),
            "protocol": flows["protocol"].astype(str),
            "service": flows["service"].astype(str),
            "tcp_flag": flows["tcp_flag"].astype(str),
            "label": labels.astype(str),
        }
    )
    return frame


# ---------------------------------------------------------------------------------------------
# 3. Categorical sequences
# ---------------------------------------------------------------------------------------------

SEQUENCE_COLUMNS = [f"s{i}" for i in range(1, 9)]
SEQUENCE_SYMBOLS = tuple("ABCDEFGH")
# The chain: each symbol has two or three possible successors; every other transition is impossible.
SEQUENCE_TRANSITIONS: dict[str, dict[str, float]] = {
    "A": {"B": 0.5, "C": 0.3, "D": 0.2},
    "B": {"C": 0.6, "E": 0.4},
    "C": {"D": 0.5, "F": 0.3, "A": 0.2},
    "D": {"E": 0.7, "G": 0.3},
    "E": {"F": 0.5, "H": 0.3, "B": 0.2},
    "F": {"G": 0.6, "A": 0.4},
    "G": {"H": 0.5, "C": 0.3, "E": 0.2},
    "H": {"A": 0.6, "D": 0.4},
}


def _transition_matrix() -> np.ndarray:
    index = {symbol: i for i, symbol in enumerate(SEQUENCE_SYMBOLS)}
    matrix = np.zeros((len(SEQUENCE_SYMBOLS), len(SEQUENCE_SYMBOLS)))
    for source, successors in SEQUENCE_TRANSITIONS.items():
        for target, probability in successors.items():
            matrix[index[source], index[target]] = probability
    return matrix


def _walk(rng: np.random.Generator, first: np.ndarray, length: int) -> np.ndarray:
    """Continue each start symbol (as an index) along the chain for ``length`` steps in total."""
    cumulative = np.cumsum(_transition_matrix(), axis=1)
    cumulative[:, -1] = 1.0
    states = np.empty((len(first), length), dtype=np.int64)
    states[:, 0] = first
    for step in range(1, length):
        draws = rng.random(len(first))
        states[:, step] = (draws[:, None] >= cumulative[states[:, step - 1]]).sum(axis=1)
    return states


def impossible_transitions(frame: pd.DataFrame) -> pd.Series:
    """Per row, how many consecutive symbol pairs the sequence chain can never produce."""
    symbols = frame[SEQUENCE_COLUMNS].to_numpy(dtype=str)
    allowed = {(a, b) for a, successors in SEQUENCE_TRANSITIONS.items() for b in successors}
    counts = [
        sum((row[i], row[i + 1]) not in allowed for i in range(len(row) - 1)) for row in symbols
    ]
    return pd.Series(counts, index=frame.index, name="impossible_transitions")


def categorical_sequences(
    seed: int = 0, n_rows: int = 50_000, n_anomalies: int = 10
) -> pd.DataFrame:
    """Rows of 8 symbols from a sparse Markov chain; exactly ``n_anomalies`` rows break it once.

    An anomalous row uses only ordinary symbols, but one step jumps to a successor the chain
    never allows, and the walk continues normally from there: rare in context, not in content.
    """
    if not 0 <= n_anomalies <= n_rows:
        raise AecoreError(
            f"n_anomalies must be between 0 and n_rows ({n_rows}), got {n_anomalies}."
        )
    rng = np.random.default_rng(seed)
    n_symbols = len(SEQUENCE_SYMBOLS)
    length = len(SEQUENCE_COLUMNS)
    states = _walk(rng, rng.integers(0, n_symbols, size=n_rows), length)

    matrix = _transition_matrix()
    anomalous_rows = np.sort(rng.choice(n_rows, size=n_anomalies, replace=False))
    for row in anomalous_rows:
        step = int(rng.integers(1, length))
        previous = states[row, step - 1]
        impossible = np.flatnonzero(matrix[previous] == 0)
        jump = int(rng.choice(impossible))
        states[row, step:] = _walk(rng, np.array([jump]), length - step)[0]

    letters = np.array(SEQUENCE_SYMBOLS)[states]
    frame = pd.DataFrame(letters, columns=SEQUENCE_COLUMNS).astype(str)
    labels = np.zeros(n_rows, dtype=np.int64)
    labels[anomalous_rows] = 1
    frame["label"] = labels
    return frame


# ---------------------------------------------------------------------------------------------
# 4. Server metrics of a data-centre rack
# ---------------------------------------------------------------------------------------------

SERVERS = [f"srv{i}" for i in range(1, 9)]
SERVER_SENSORS = [
    "cpu_temp_c",
    "cpu2_temp_c",
    "inlet_temp_c",
    "exhaust_temp_c",
    "power_w",
    "cpu_util_pct",
    "mem_util_pct",
    "ips_million",
    "fan_rpm",
    "disk_iops",
    "net_in_mbps",
    "net_out_mbps",
    "gpu_util_pct",
]
RACK_SENSORS = ["rack_inlet_temp_c", "rack_power_kw", "humidity_pct"]
SENSOR_COLUMNS = [f"{server}_{sensor}" for server in SERVERS for sensor in SERVER_SENSORS] + [
    *RACK_SENSORS
]
SERVER_METRICS_START = "2026-03-02 00:00"
# The servers whose workload changes in the drifted rack.
DRIFTED_SERVERS = ("srv5", "srv6", "srv7", "srv8")
SERVER_ANOMALIES = (
    "fan_failure",
    "runaway_process",
    "psu_fault",
    "cooling",
    "network_storm",
    "memory_leak",
)

_DECIMALS = {
    "cpu_temp_c": 2,
    "cpu2_temp_c": 2,
    "inlet_temp_c": 2,
    "exhaust_temp_c": 2,
    "power_w": 1,
    "cpu_util_pct": 1,
    "mem_util_pct": 1,
    "ips_million": 0,
    "fan_rpm": 0,
    "disk_iops": 0,
    "net_in_mbps": 1,
    "net_out_mbps": 1,
    "gpu_util_pct": 1,
    "rack_inlet_temp_c": 2,
    "rack_power_kw": 3,
    "humidity_pct": 1,
}
_MAX_ANOMALY_Z = 3.9  # no single reading of a planted anomaly is further out than this


@dataclass(frozen=True)
class _Rack:
    """Fixed character of the eight servers (bottom to top); the seed never changes these."""

    util_base: np.ndarray
    util_amp: np.ndarray
    gpu_base: np.ndarray
    gpu_amp: np.ndarray
    ips_per_util: np.ndarray
    idle_w: np.ndarray
    inlet_offset: np.ndarray
    thermal_cpu: np.ndarray
    peak_hour: np.ndarray


def _base_rack() -> _Rack:
    return _Rack(
        util_base=np.array([18, 22, 15, 25, 20, 24, 14, 19], dtype=float),
        util_amp=np.array([50, 45, 55, 42, 48, 44, 52, 50], dtype=float),
        gpu_base=np.array([3, 25, 5, 6, 30, 8, 22, 4], dtype=float),
        gpu_amp=np.array([4, 35, 6, 8, 30, 10, 40, 5], dtype=float),
        ips_per_util=np.array([105, 92, 118, 98, 101, 112, 88, 96], dtype=float),
        idle_w=np.array([165, 205, 160, 175, 210, 170, 200, 168], dtype=float),
        inlet_offset=np.linspace(-0.6, 1.4, 8),
        thermal_cpu=np.array([0.115, 0.110, 0.120, 0.113, 0.108, 0.118, 0.112, 0.116]),
        peak_hour=np.full(8, 15.0),
    )


def _drifted(rack: _Rack) -> _Rack:
    """The rack after a new batch workload lands on its upper half: hotter, busier, at night."""
    moved = np.isin(SERVERS, DRIFTED_SERVERS)
    return _Rack(
        util_base=np.where(moved, rack.util_base + 22, rack.util_base),
        util_amp=np.where(moved, rack.util_amp * 0.6, rack.util_amp),
        gpu_base=np.where(moved, rack.gpu_base + 15, rack.gpu_base),
        gpu_amp=rack.gpu_amp,
        ips_per_util=np.where(moved, rack.ips_per_util * 1.15, rack.ips_per_util),
        idle_w=np.where(moved, rack.idle_w + 25, rack.idle_w),
        inlet_offset=rack.inlet_offset,
        thermal_cpu=np.where(moved, rack.thermal_cpu * 1.1, rack.thermal_cpu),
        peak_hour=np.where(moved, 23.0, rack.peak_hour),
    )


@dataclass(frozen=True)
class _Event:
    kind: str
    server: int
    start: int
    stop: int

    def ramp(self, n_rows: int, minutes: float = 3.0) -> np.ndarray:
        """0 outside the event, rising to 1 over the first minutes inside it."""
        weight = np.zeros(n_rows)
        inside = np.arange(self.stop - self.start)
        weight[self.start : self.stop] = np.minimum(1.0, (inside + 1) / minutes)
        return weight


def _ar1(rng: np.random.Generator, shape: tuple[int, int], phi: float, sd: float) -> np.ndarray:
    """Stationary AR(1) noise along axis 0 with marginal standard deviation ``sd``."""
    shocks = rng.normal(0.0, sd * np.sqrt(1 - phi**2), size=shape)
    shocks[0] = rng.normal(0.0, sd, size=shape[1])
    return lfilter([1.0], [1.0, -phi], shocks, axis=0)


def _lag(target: np.ndarray, alpha: float) -> np.ndarray:
    """First-order thermal lag: each minute moves ``alpha`` of the way to the target."""
    initial = (1 - alpha) * target[:1]
    lagged, _ = lfilter([alpha], [1.0, -(1 - alpha)], target, axis=0, zi=initial)
    return lagged


def _daily(hours: np.ndarray, peak_hour: np.ndarray) -> np.ndarray:
    """A daily cycle in [0, 1], peaking at ``peak_hour`` (one per server)."""
    phase = 2 * np.pi * (hours[:, None] - peak_hour[None, :]) / 24
    return 0.5 + 0.5 * np.cos(phase) + 0.08 * np.sin(2 * phase)


def _plan_events(rng: np.random.Generator, n_rows: int) -> list[_Event]:
    """About 4 % of the minutes in 10-40 minute events, spread evenly, at least an hour apart."""
    n_events = max(1, round(7 * n_rows / 4000))
    lengths = rng.uniform(0.6, 1.4, n_events)
    lengths = np.clip(np.round(lengths / lengths.sum() * 0.04 * n_rows), 10, 40).astype(int)
    shuffled = [SERVER_ANOMALIES[i] for i in rng.permutation(len(SERVER_ANOMALIES))]
    kinds = [shuffled[i % len(shuffled)] for i in range(n_events)]
    starts = _place_bursts(rng, [int(length) + 60 for length in lengths], n_rows)
    return [
        _Event(kind, int(rng.integers(0, len(SERVERS))), start + 30, start + 30 + int(length))
        for kind, start, length in zip(kinds, starts, lengths, strict=True)
    ]


def _simulate_rack(
    rng: np.random.Generator, hours: np.ndarray, rack: _Rack, events: list[_Event]
) -> dict[str, np.ndarray]:
    """Sensor readings, (rows, servers) per sensor, with the events' effects applied."""
    n_rows, n_servers = len(hours), len(SERVERS)
    shape = (n_rows, n_servers)

    def server_ramp(kind: str, minutes: float = 3.0) -> np.ndarray:
        weight = np.zeros(shape)
        for event in events:
            if event.kind == kind:
                weight[:, event.server] = np.maximum(
                    weight[:, event.server], event.ramp(n_rows, minutes)
                )
        return weight

    def rack_ramp(kind: str, minutes: float = 3.0) -> np.ndarray:
        weight = np.zeros(n_rows)
        for event in events:
            if event.kind == kind:
                weight = np.maximum(weight, event.ramp(n_rows, minutes))
        return weight

    cycle = _daily(hours, rack.peak_hour)
    util = rack.util_base + rack.util_amp * cycle + _ar1(rng, shape, 0.97, 3.0)
    util += rng.normal(0, 1.5, shape)
    runaway = server_ramp("runaway_process", 2.0)
    pinned = rng.uniform(94, 98, n_servers) + rng.normal(0, 0.4, shape)
    util = (1 - runaway) * util + runaway * pinned
    storm = server_ramp("network_storm", 2.0)
    leak_growth = np.zeros(shape)
    for event in events:
        if event.kind == "memory_leak":
            length = event.stop - event.start
            filling = np.minimum(1.0, np.linspace(0.1, 2.0, length))  # full by mid-event
            leak_growth[event.start : event.stop, event.server] = filling
    busy = np.clip(util + 20 * storm, 0.5, 100)  # packet handling executes instructions too
    efficiency = 1 - 0.55 * runaway - 0.45 * leak_growth  # spinning or stalled on swap
    ips = rack.ips_per_util * busy * efficiency * (1 + rng.normal(0, 0.03, shape))
    util = np.clip(busy + 12 * leak_growth, 0.5, 100)  # swapping shows as busy, not as work

    gpu = rack.gpu_base + rack.gpu_amp * cycle + _ar1(rng, shape, 0.95, 3.0)
    gpu = np.clip(gpu + rng.normal(0, 1.0, shape), 0, 100)

    mem = 30 + 0.3 * util + _ar1(rng, shape, 0.995, 3.0) + 14 * leak_growth
    mem = np.clip(mem + rng.normal(0, 0.5, shape), 1, 100)
    disk = (150 + 22 * util) * np.exp(rng.normal(0, 0.12, shape)) + 1000 * leak_growth

    traffic = np.exp(rng.normal(0, 0.1, shape))
    net_in = (20 + 6 * util) * traffic * np.exp(rng.normal(0, 0.06, shape)) + 180 * storm
    net_out = (15 + 7 * util) * traffic * np.exp(rng.normal(0, 0.06, shape)) + 150 * storm

    psu = server_ramp("psu_fault", 2.0) * rng.uniform(50, 65, n_servers)
    power = rack.idle_w + 2.0 * util + 1.6 * gpu + rng.normal(0, 3.0, shape) + psu

    cooling = rack_ramp("cooling", 8.0)
    humidity = 45 + _ar1(rng, (n_rows, 1), 0.995, 1.5)[:, 0]
    rack_inlet = 22 + 1.5 * np.sin(2 * np.pi * (hours - 9) / 24)
    rack_inlet += _ar1(rng, (n_rows, 1), 0.99, 0.3)[:, 0] + 2.0 * cooling
    humidity -= 0.8 * (rack_inlet - 22) + 2.0 * cooling
    rack_inlet += rng.normal(0, 0.05, n_rows)
    inlet = rack_inlet[:, None] + rack.inlet_offset + _ar1(rng, shape, 0.9, 0.15)
    inlet += 0.25 * cooling[:, None] * np.linspace(0, 1, n_servers)

    fan = 2000 + 7.0 * (power - 150) + 80 * (inlet - 22) + rng.normal(0, 30, shape)
    failing = server_ramp("fan_failure", 3.0) * rng.uniform(0.15, 0.2, n_servers)
    fan *= 1 - failing
    airflow = fan / 3000
    cpu_heat = power - psu
    cpu_temp = _lag(inlet + rack.thermal_cpu * cpu_heat / airflow**0.8, 0.35)
    cpu2_temp = _lag(inlet + 0.92 * rack.thermal_cpu * cpu_heat / airflow**0.8, 0.35)
    exhaust = _lag(inlet + 0.045 * power / airflow, 0.5)

    return {
        "cpu_temp_c": cpu_temp + rng.normal(0, 0.25, shape),
        "cpu2_temp_c": cpu2_temp + rng.normal(0, 0.25, shape),
        "inlet_temp_c": inlet,
        "exhaust_temp_c": exhaust + rng.normal(0, 0.15, shape),
        "power_w": power,
        "cpu_util_pct": util,
        "mem_util_pct": mem,
        "ips_million": ips,
        "fan_rpm": fan,
        "disk_iops": disk,
        "net_in_mbps": net_in,
        "net_out_mbps": net_out,
        "gpu_util_pct": gpu,
        "rack_inlet_temp_c": rack_inlet,
        "rack_power_kw": power.sum(axis=1) / 1000 + 0.35 + rng.normal(0, 0.01, n_rows),
        "humidity_pct": humidity,
    }


def server_metrics(
    seed: int = 0,
    n_rows: int = 4000,
    start: str = SERVER_METRICS_START,
    drift: bool = False,
) -> pd.DataFrame:
    """One reading a minute from a rack of 8 servers (107 sensors); ``label`` 1 in anomaly periods.

    Each labelled period (fan failure, runaway process, power-supply fault, cooling problem,
    network storm, memory leak) moves several related sensors together, none of them beyond
    ~4 standard deviations: clear in the joint pattern, hidden in any one column.
    ``drift=True`` is the same rack after a new workload made srv5-srv8 busier and hotter.
    """
    if n_rows < 200:
        raise AecoreError(f"server_metrics needs at least 200 rows (minutes), got {n_rows}.")
    try:
        first = pd.Timestamp(start)
    except (TypeError, ValueError) as error:
        raise AecoreError(f"Could not read {start!r} as a start time.") from error
    rng = np.random.default_rng(seed)
    timestamps = pd.date_range(first, periods=n_rows, freq="min")
    hours = np.asarray(timestamps.hour + timestamps.minute / 60, dtype=float)
    rack = _drifted(_base_rack()) if drift else _base_rack()
    events = _plan_events(rng, n_rows)
    readings = _simulate_rack(rng, hours, rack, events)

    labels = np.zeros(n_rows, dtype=np.int64)
    for event in events:
        labels[event.start : event.stop] = 1
    columns: dict[str, np.ndarray] = {}
    for server_index, server in enumerate(SERVERS):
        for sensor in SERVER_SENSORS:
            columns[f"{server}_{sensor}"] = readings[sensor][:, server_index]
    for sensor in RACK_SENSORS:
        columns[sensor] = readings[sensor]
    sensors = pd.DataFrame(columns)

    normal = sensors[labels == 0]
    low = normal.mean() - _MAX_ANOMALY_Z * normal.std()
    high = normal.mean() + _MAX_ANOMALY_Z * normal.std()
    anomalous = labels == 1
    sensors.loc[anomalous] = sensors.loc[anomalous].clip(low, high, axis=1)

    output: dict[str, object] = {"timestamp": timestamps}
    for column in sensors.columns:
        decimals = _DECIMALS[column.split("_", 1)[1] if column.startswith("srv") else column]
        rounded = sensors[column].round(decimals)
        output[column] = rounded.astype(np.int64) if decimals == 0 else rounded
    output["label"] = labels
    frame = pd.DataFrame(output)
    return frame


def day_after(frame: pd.DataFrame, time_column: str = "timestamp") -> str:
    """Midnight after the last timestamp of ``frame``: where a follow-on batch should start."""
    last = pd.Timestamp(frame[time_column].max())
    return (last.normalize() + pd.Timedelta(days=1)).strftime("%Y-%m-%d %H:%M")


# ---------------------------------------------------------------------------------------------
# 5. Intrusion log (NSL-KDD-like)
# ---------------------------------------------------------------------------------------------

# 66 services, the usual ones first: normal traffic draws them with falling weights.
INTRUSION_SERVICES = (
    "http",
    "domain_u",
    "smtp",
    "ftp_data",
    "private",
    "other",
    "ftp",
    "telnet",
    "urp_i",
    "eco_i",
    "ecr_i",
    "ntp_u",
    "finger",
    "auth",
    "pop_3",
    "IRC",
    "X11",
    "tftp_u",
    "time",
    "imap4",
    "ssh",
    "domain",
    "sunrpc",
    "whois",
    "urh_i",
    "red_i",
    "tim_i",
    "shell",
    "login",
    "exec",
    "klogin",
    "kshell",
    "printer",
    "uucp",
    "uucp_path",
    "nntp",
    "nnsp",
    "netstat",
    "systat",
    "daytime",
    "echo",
    "discard",
    "ctf",
    "csnet_ns",
    "courier",
    "bgp",
    "gopher",
    "hostnames",
    "iso_tsap",
    "ldap",
    "link",
    "mtp",
    "name",
    "netbios_dgm",
    "netbios_ns",
    "netbios_ssn",
    "pm_dump",
    "pop_2",
    "remote_job",
    "rje",
    "sql_net",
    "supdup",
    "vmnet",
    "Z39_50",
    "efs",
    "http_443",
)
INTRUSION_FLAGS = ("SF", "S0", "REJ", "RSTO", "RSTR", "S1", "S2", "S3", "SH", "OTH", "RSTOS0")
INTRUSION_NUMERIC = [
    "duration", "src_bytes", "dst_bytes", "land", "wrong_fragment", "hot", "num_failed_logins",
    "logged_in", "num_compromised", "count", "srv_count", "serror_rate", "srv_serror_rate",
    "rerror_rate", "srv_rerror_rate", "same_srv_rate", "diff_srv_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_serror_rate", "dst_host_rerror_rate",
]  # fmt: skip
INTRUSION_CATEGORICAL = ["protocol_type", "service", "flag"]
_UDP_SERVICES = {"domain_u", "ntp_u", "tftp_u"}
_ICMP_SERVICES = {"urp_i", "eco_i", "ecr_i", "urh_i", "red_i", "tim_i"}
# Normal traffic per service: (median src bytes, median dst bytes, share with a login,
# share lasting longer than a second, typical connections to the host in the last 2 s).
_NORMAL_PROFILES = {
    "http": (230, 2000, 0.98, 0.02, 8),
    "domain_u": (44, 90, 0.0, 0.0, 60),
    "smtp": (1100, 330, 0.95, 0.15, 2),
    "ftp_data": (900, 150, 0.6, 0.25, 3),
    "private": (105, 105, 0.0, 0.02, 4),
    "other": (150, 60, 0.1, 0.2, 3),
    "ftp": (380, 900, 0.9, 0.6, 2),
    "telnet": (190, 2400, 0.9, 0.9, 1),
    "urp_i": (37, 0, 0.0, 0.0, 2),
    "eco_i": (20, 0, 0.0, 0.0, 2),
    "ecr_i": (30, 0, 0.0, 0.0, 2),
    "ntp_u": (48, 48, 0.0, 0.0, 5),
}
_DEFAULT_PROFILE = (250, 600, 0.5, 0.2, 2)
_NORMAL_FLAG_WEIGHTS = (93.0, 0.8, 2.0, 1.0, 1.0, 0.6, 0.3, 0.3, 0.3, 0.3, 0.2)
# Attack names with their family and their weight in an attack mix; the last four occur only
# in a "later" file (new attacks the training file never showed).
INTRUSION_ATTACKS = {
    "neptune": ("syn_flood", 35), "smurf": ("icmp_flood", 15), "back": ("http_flood", 4),
    "teardrop": ("fragment", 4), "pod": ("fragment", 3), "land": ("land", 1),
    "satan": ("probe", 6), "ipsweep": ("icmp_probe", 6), "portsweep": ("probe", 6),
    "nmap": ("probe", 4), "guess_passwd": ("login", 3), "warezclient": ("transfer", 5),
    "warezmaster": ("transfer", 2), "imap": ("login", 1), "ftp_write": ("transfer", 1),
    "multihop": ("shell", 1), "phf": ("http_flood", 1), "buffer_overflow": ("shell", 1),
    "rootkit": ("shell", 1), "loadmodule": ("shell", 1), "perl": ("shell", 1),
}  # fmt: skip
INTRUSION_NEW_ATTACKS = {
    "mscan": ("probe", 5), "apache2": ("http_flood", 5), "processtable": ("syn_flood", 4),
    "saint": ("probe", 3),
}  # fmt: skip


def _rates(rng: np.random.Generator, centre: float, n: int, spread: float = 0.03) -> np.ndarray:
    return np.clip(np.round(centre + rng.normal(0.0, spread, n), 2), 0.0, 1.0)


def _normal_connections(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Ordinary traffic: a mixture of services, each with its own sizes, logins and load."""
    weights = 1.0 / np.arange(1, len(INTRUSION_SERVICES) + 1) ** 1.3 + 0.002
    service = rng.choice(np.array(INTRUSION_SERVICES), n, p=weights / weights.sum())
    profile = np.array([_NORMAL_PROFILES.get(s, _DEFAULT_PROFILE) for s in service])
    protocol = np.where(
        np.isin(service, list(_ICMP_SERVICES)),
        "icmp",
        np.where(np.isin(service, list(_UDP_SERVICES)), "udp", "tcp"),
    )
    weights = np.array(_NORMAL_FLAG_WEIGHTS)
    flag = rng.choice(np.array(INTRUSION_FLAGS), n, p=weights / weights.sum())
    flag[protocol != "tcp"] = "SF"
    size = rng.normal(0.0, 1.0, n)  # one "how big is this conversation" per row
    src = profile[:, 0] * np.exp(0.7 * size + rng.normal(0, 0.35, n))
    dst = profile[:, 1] * np.exp(0.8 * size + rng.normal(0, 0.45, n))
    broken = flag != "SF"
    src[flag == "S0"], dst[flag == "S0"] = 0, 0
    dst[np.isin(flag, ["REJ", "RSTR", "RSTOS0", "SH"])] = 0
    long = rng.random(n) < profile[:, 3]
    duration = np.where(long, np.exp(2.0 + 0.8 * size + rng.normal(0, 1.0, n)), 0.0)
    logged_in = ((rng.random(n) < profile[:, 2]) & ~broken).astype(np.int64)
    count = 1 + rng.poisson(profile[:, 4])
    same_srv = np.where(broken, _rates(rng, 0.6, n, 0.2), _rates(rng, 0.97, n, 0.04))
    host_count = np.clip(np.round(255 * rng.beta(2.0, 1.2, n)), 1, 255)
    host_same = _rates(rng, 0.0, n, 0.0)
    host_same[:] = np.clip(np.round(rng.beta(5.0, 1.5, n), 2), 0.0, 1.0)
    host_srv = np.clip(np.round(host_count * host_same), 1, 255)
    serror = np.where(
        np.isin(flag, ["S0", "S1", "S2", "S3", "RSTOS0"]),
        _rates(rng, 0.5, n, 0.3),
        _rates(rng, 0.0, n, 0.01),
    )
    rerror = np.where(
        np.isin(flag, ["REJ", "RSTR", "RSTO"]), _rates(rng, 0.5, n, 0.3), _rates(rng, 0.0, n, 0.01)
    )
    return {
        "duration": duration,
        "protocol_type": protocol,
        "service": service,
        "flag": flag,
        "src_bytes": src,
        "dst_bytes": dst,
        "land": np.zeros(n),
        "wrong_fragment": np.zeros(n),
        "hot": np.where(rng.random(n) < 0.05 * logged_in, rng.integers(1, 4, n), 0),
        "num_failed_logins": np.where(rng.random(n) < 0.002, 1, 0),
        "logged_in": logged_in,
        "num_compromised": np.where(rng.random(n) < 0.01 * logged_in, 1, 0),
        "count": count,
        "srv_count": np.maximum(1, np.round(count * same_srv)),
        "serror_rate": serror,
        "srv_serror_rate": np.clip(np.round(serror + rng.normal(0, 0.02, n), 2), 0, 1),
        "rerror_rate": rerror,
        "srv_rerror_rate": np.clip(np.round(rerror + rng.normal(0, 0.02, n), 2), 0, 1),
        "same_srv_rate": same_srv,
        "diff_srv_rate": np.clip(np.round(1 - same_srv + rng.normal(0, 0.02, n), 2), 0, 1),
        "dst_host_count": host_count,
        "dst_host_srv_count": host_srv,
        "dst_host_same_srv_rate": host_same,
        "dst_host_diff_srv_rate": np.clip(np.round((1 - host_same) * 0.3, 2), 0, 1),
        "dst_host_serror_rate": np.clip(np.round(serror * 0.8, 2), 0, 1),
        "dst_host_rerror_rate": np.clip(np.round(rerror * 0.8, 2), 0, 1),
    }


def _attack_connections(rng: np.random.Generator, family: str, n: int) -> dict[str, np.ndarray]:
    """``n`` rows of one attack family: the normal columns, overwritten by its signature."""
    rows = _normal_connections(rng, n)
    services = np.array(INTRUSION_SERVICES)
    one = np.ones(n)
    if family == "syn_flood":  # half-open connections to many ports of one host
        rows.update(
            protocol_type=np.full(n, "tcp"),
            flag=rng.choice(["S0", "REJ"], n, p=[0.85, 0.15]),
            service=np.where(rng.random(n) < 0.3, "private", rng.choice(services, n)),
            src_bytes=0 * one,
            dst_bytes=0 * one,
            duration=0 * one,
            logged_in=0 * one,
            count=rng.integers(100, 500, n),
            same_srv_rate=_rates(rng, 0.05, n),
            dst_host_count=255 * one,
            dst_host_srv_count=rng.integers(1, 25, n),
            serror_rate=_rates(rng, 0.95, n),
            dst_host_serror_rate=_rates(rng, 0.95, n),
        )
        rows["srv_count"] = np.maximum(1, np.round(rows["count"] * rows["same_srv_rate"]))
        rows["srv_serror_rate"] = rows["serror_rate"]
    elif family == "icmp_flood":  # echo replies of one size, hundreds a second
        rows.update(
            protocol_type=np.full(n, "icmp"),
            service=np.full(n, "ecr_i"),
            flag=np.full(n, "SF"),
            src_bytes=rng.choice([520, 1032], n, p=[0.3, 0.7]).astype(float),
            dst_bytes=0 * one,
            duration=0 * one,
            logged_in=0 * one,
            count=511 * one,
            srv_count=511 * one,
            same_srv_rate=one,
            dst_host_count=255 * one,
            dst_host_srv_count=255 * one,
            dst_host_same_srv_rate=one,
        )
    elif family == "http_flood":  # oversized requests to a web server
        rows.update(
            protocol_type=np.full(n, "tcp"),
            service=np.full(n, "http"),
            src_bytes=rng.normal(54_000, 800, n),
            dst_bytes=rng.normal(8_300, 400, n),
            hot=rng.integers(2, 6, n),
            logged_in=one,
            count=rng.integers(10, 40, n),
        )
    elif family == "fragment":  # malformed fragments
        rows.update(
            protocol_type=np.where(rng.random(n) < 0.6, "udp", "icmp"),
            flag=np.full(n, "SF"),
            service=rng.choice(["private", "ecr_i"], n),
            wrong_fragment=rng.choice([1, 3], n) * one,
            src_bytes=rng.choice([28, 1480], n).astype(float),
            dst_bytes=0 * one,
            logged_in=0 * one,
        )
    elif family == "land":  # source address and port equal the destination's
        rows.update(
            protocol_type=np.full(n, "tcp"),
            flag=np.full(n, "S0"),
            land=one,
            src_bytes=0 * one,
            dst_bytes=0 * one,
            logged_in=0 * one,
            serror_rate=one,
        )
    elif family == "probe":  # one touch per port or service, mostly refused
        rows.update(
            protocol_type=np.full(n, "tcp"),
            service=rng.choice(services, n),
            flag=rng.choice(["REJ", "S0", "RSTR", "RSTO", "SF"], n, p=[0.45, 0.2, 0.2, 0.1, 0.05]),
            src_bytes=rng.integers(0, 10, n) * one,
            dst_bytes=0 * one,
            logged_in=0 * one,
            same_srv_rate=_rates(rng, 0.05, n),
            diff_srv_rate=_rates(rng, 0.9, n),
            rerror_rate=_rates(rng, 0.8, n, 0.15),
            dst_host_srv_count=rng.integers(1, 10, n),
            dst_host_diff_srv_rate=_rates(rng, 0.85, n),
            dst_host_rerror_rate=_rates(rng, 0.8, n),
        )
    elif family == "icmp_probe":  # pings to many hosts
        rows.update(
            protocol_type=np.full(n, "icmp"),
            service=np.full(n, "eco_i"),
            flag=np.full(n, "SF"),
            src_bytes=8 * one,
            dst_bytes=0 * one,
            logged_in=0 * one,
            count=one,
            srv_count=one,
            dst_host_count=rng.integers(1, 5, n) * one,
            dst_host_srv_count=rng.integers(40, 120, n) * one,
            dst_host_diff_srv_rate=one,
            dst_host_same_srv_rate=_rates(rng, 0.2, n, 0.1),
        )
    elif family == "login":  # repeated failed logins
        rows.update(
            protocol_type=np.full(n, "tcp"),
            service=rng.choice(["telnet", "imap4", "pop_3"], n),
            flag=rng.choice(["RSTO", "SF", "S1"], n),
            num_failed_logins=rng.integers(1, 5, n),
            logged_in=0 * one,
            src_bytes=rng.normal(125, 5, n),
            dst_bytes=rng.normal(180, 10, n),
            duration=rng.uniform(1, 5, n),
            dst_host_count=rng.integers(1, 10, n) * one,
        )
    elif family == "transfer":  # large uploads and downloads of files on FTP
        rows.update(
            protocol_type=np.full(n, "tcp"),
            service=rng.choice(["ftp_data", "ftp"], n),
            flag=np.full(n, "SF"),
            logged_in=one,
            hot=rng.integers(10, 30, n),
            src_bytes=np.exp(rng.normal(12.5, 0.6, n)),
            dst_bytes=rng.integers(0, 300, n) * one,
            duration=np.exp(rng.normal(5.0, 1.0, n)),
            num_compromised=rng.integers(0, 2, n),
        )
    else:  # shell: a long interactive session that gains root
        rows.update(
            protocol_type=np.full(n, "tcp"),
            service=rng.choice(["telnet", "ftp_data", "login"], n),
            flag=np.full(n, "SF"),
            logged_in=one,
            hot=rng.integers(2, 8, n),
            num_compromised=rng.integers(1, 10, n),
            duration=np.exp(rng.normal(5.5, 0.8, n)),
            src_bytes=np.exp(rng.normal(8.0, 0.7, n)),
            dst_bytes=np.exp(rng.normal(9.5, 0.7, n)),
            count=one,
            srv_count=one,
            dst_host_count=rng.integers(1, 5, n) * one,
        )
    return rows


def intrusion_log(
    seed: int = 0, n_rows: int = 5000, attack_share: float = 0.03, new_attacks: bool = False
) -> pd.DataFrame:
    """Network connection records shaped like NSL-KDD (synthetic): 23 numbers, 3 text columns
    (``protocol_type``, ``service`` with 66 values, ``flag`` with 11) and ``attack``, holding
    ``normal`` or one of 21 attack names (25 with ``new_attacks``), rows in random order.

    Normal rows come from one fixed distribution whatever the seed or the attack share, so a
    later file with mostly attacks still has normal rows like the training file's. Every attack
    name occurs at least once.
    """
    attacks = {**INTRUSION_ATTACKS, **(INTRUSION_NEW_ATTACKS if new_attacks else {})}
    if n_rows < 200 or not 0 < attack_share < 1:
        raise AecoreError("intrusion_log needs at least 200 rows and an attack share in (0, 1).")
    n_attacks = max(len(attacks), round(n_rows * attack_share))
    weights = np.array([weight for _, weight in attacks.values()], dtype=float)
    counts = 1 + np.floor((n_attacks - len(attacks)) * weights / weights.sum()).astype(int)
    counts[0] += n_attacks - counts.sum()
    rng = np.random.default_rng(seed)
    parts = [_normal_connections(rng, n_rows - n_attacks)]
    labels = [np.full(n_rows - n_attacks, "normal", dtype=object)]
    for (name, (family, _)), count in zip(attacks.items(), counts, strict=True):
        parts.append(_attack_connections(rng, family, int(count)))
        labels.append(np.full(int(count), name, dtype=object))
    columns = ["duration", *INTRUSION_CATEGORICAL, *INTRUSION_NUMERIC[1:]]
    frame = pd.DataFrame({c: np.concatenate([np.asarray(p[c]) for p in parts]) for c in columns})
    frame["attack"] = np.concatenate(labels)
    for column in INTRUSION_NUMERIC:
        values = frame[column].to_numpy(dtype=float)
        if column.endswith("_rate"):
            frame[column] = np.clip(np.round(values, 2), 0.0, 1.0) + 0.0  # no "-0.0"
        else:
            frame[column] = np.maximum(np.round(values), 0).astype(np.int64)
    order = rng.permutation(n_rows)
    return frame.iloc[order].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Registry and writing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """A committed sample file: its name, a one-line description and the column roles to use."""

    filename: str
    description: str
    features: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    time: str | None = None
    ignore: tuple[str, ...] = ()
    label: str = "label"
    ids: tuple[str, ...] = ()

    def roles(self) -> ColumnRoles:
        """A fresh ``ColumnRoles`` for this file (safe to modify)."""
        return ColumnRoles(
            features=list(self.features),
            categorical=list(self.categorical),
            time=self.time,
            label=self.label,
            ignore=list(self.ignore),
            ids=list(self.ids),
        )


SAMPLES: dict[str, Sample] = {
    "gaussian": Sample(
        "gaussian.csv",
        "1,000 normal rows and 50 far-off anomalies in 20 Gaussian features.",
        features=tuple(GAUSSIAN_FEATURES),
    ),
    "network_flows": Sample(
        "network_flows.csv",
        "6,000 network flows with bursts of dos, portscan, bruteforce and exfiltration traffic.",
        features=tuple(FLOW_NUMERIC),
        categorical=tuple(FLOW_CATEGORICAL),
        time="timestamp",
        ids=("flow_id",),
    ),
    "categorical_sequences": Sample(
        "categorical_sequences.csv",
        "50,000 symbol sequences from a Markov chain; 10 contain impossible transitions.",
        categorical=tuple(SEQUENCE_COLUMNS),
    ),
    "server_metrics": Sample(
        "server_metrics.csv",
        "4,000 minutes of 107 sensors from a rack of 8 servers, with 7 labelled incidents.",
        features=tuple(SENSOR_COLUMNS),
        time="timestamp",
    ),
    "server_metrics_drift": Sample(
        "server_metrics_drift.csv",
        "2,000 minutes of the same rack after a new workload changed srv5-srv8.",
        features=tuple(SENSOR_COLUMNS),
        time="timestamp",
    ),
    "intrusion_train": Sample(
        "intrusion_train.csv",
        "5,000 network connections (NSL-KDD-like): 3% attacks of 21 kinds in an 'attack' column.",
        features=tuple(INTRUSION_NUMERIC),
        categorical=tuple(INTRUSION_CATEGORICAL),
        label="attack",
    ),
    "intrusion_test": Sample(
        "intrusion_test.csv",
        "4,000 later connections, 70% attacks (4 kinds never seen in intrusion_train.csv).",
        features=tuple(INTRUSION_NUMERIC),
        categorical=tuple(INTRUSION_CATEGORICAL),
        label="attack",
    ),
}


def sample_frames() -> dict[str, pd.DataFrame]:
    """Every committed sample, by name, exactly as ``write_all`` writes it."""
    metrics = server_metrics(seed=0)
    return {
        "gaussian": gaussian(seed=0),
        "network_flows": network_flows(seed=0),
        "categorical_sequences": categorical_sequences(seed=0),
        "server_metrics": metrics,
        "server_metrics_drift": server_metrics(
            seed=1, n_rows=2000, start=day_after(metrics), drift=True
        ),
        "intrusion_train": intrusion_log(seed=0, n_rows=5000, attack_share=0.03),
        "intrusion_test": intrusion_log(seed=1, n_rows=4000, attack_share=0.7, new_attacks=True),
    }


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write one sample the way all are written: no index, ISO times, Unix line ends."""
    frame.to_csv(path, index=False, date_format=ISO_SECONDS, lineterminator="\n")
    return path


def write_all(out_dir: str | Path) -> list[Path]:
    """Write every sample CSV into ``out_dir`` (created if missing); return the paths written."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_csv(frame, folder / SAMPLES[name].filename)
        for name, frame in sample_frames().items()
    ]
