"""Settings, read once at start from flags and ``HUBSTEAD_*`` environment variables."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Files above this size go to LFS even when no .gitattributes pattern matches (the Hub's rule).
LFS_THRESHOLD_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to know about where it keeps things and how it answers."""

    data_dir: Path
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8000
    # What this process runs (``hubstead serve --role``, docs/ARCHITECTURE.md "Processes"): "all" (API and the
    # stateful services), "api" (requests only) or "compute" (competes for the services' lease).
    role: str = "all"
    secret_key: str = field(default="", repr=False)
    # Uploads: part size offered for the multipart LFS transfer, and the size above which it is offered.
    multipart_chunk_size: int = 64 * 1024 * 1024
    multipart_threshold: int = 256 * 1024 * 1024
    # Largest NDJSON commit body accepted (inline files travel base64 inside it).
    max_commit_body_bytes: int = 512 * 1024 * 1024
    signed_url_ttl_seconds: int = 24 * 3600
    git_author_email_domain: str = "users.hubstead.local"
    signup_enabled: bool = True
    # Brute-force budgets (auth.throttle): failed sign-ins per account and per address in 15 minutes, and
    # requests with an invalid token per address in 5 minutes; 0 = no budget.
    signin_failures_per_account: int = 10
    signin_failures_per_address: int = 30
    token_failures_per_address: int = 60
    # How often trending and 30-day download figures are recomputed from the daily stats.
    rollup_interval_seconds: int = 600
    # Inference (the ``inference`` extra): which form encoders are served in, the memory all loaded
    # models may use together, the per-model queue bound, and a per-model config file (runtimes, engines).
    inference_enabled: bool = True
    inference_runtime: str = "pytorch"
    inference_memory_bytes: int = 8 * 1024**3
    inference_max_queue: int = 256
    inference_max_batch_tokens: int = 16384
    inference_max_sequences: int = 32
    inference_device: str = "auto"
    inference_threads: int | None = None
    # Worker processes per CPU encoder model (None: 2 where there are 2+ cores and no GPU).
    inference_replicas: int | None = None
    inference_config: Path | None = None
    # How long a request for a model that is still loading waits for the load before the Hub's 503 with
    # Retry-After (huggingface_hub 2.x does not retry a 503); 0 = answer 503 at once.
    inference_load_wait_seconds: float = 120.0
    # A loaded model with no request for this long is unloaded (its worker process stops and its memory is
    # freed); the next request loads it again. 0 = never.
    inference_idle_unload_seconds: float = 900.0
    metrics_token: str | None = field(default=None, repr=False)
    # Long work (dataset conversion) runs in job processes, this many at a time (slots), each under a
    # wall-clock limit (seconds), a CPU-time limit (seconds) and a memory limit (bytes); 0 = no limit.
    job_workers: int = 2
    job_time_limit: float = 600.0
    job_cpu_limit: int = 1200
    job_memory_limit: int = 3 * 2**30
    # The address people and webhook receivers reach this hub at (links in webhook payloads); None: the
    # address it listens on.
    public_url: str | None = None
    # Webhooks (``hubstead.webhooks``): whether a hook may point at loopback, link-local or private addresses
    # (off: only public ones), the receiver's time to answer, attempts per event, and the first retry's delay
    # (each later one waits 4x longer, at most 60x).
    webhooks_allow_private: bool = False
    webhooks_timeout: float = 10.0
    webhooks_max_attempts: int = 5
    webhooks_retry_delay: float = 1.0
    # Spaces (``hubstead.spaces``): whether the hub runs them; the domain under which each is also served at
    # ``{owner}-{name}.{domain}``; the package index their environments install from (None: uv's default, or
    # ``UV_INDEX_URL``/``PIP_INDEX_URL`` as the host has them) and extra indexes; the memory all running spaces
    # may use together (the least recently visited sleeps first past it); how long an app may take to open its
    # port; the sleep time of a space that set none (seconds; the Hub's 48 hours); the sandbox ("bwrap", or
    # "none", which an admin must choose on purpose).
    spaces_enabled: bool = True
    spaces_domain: str | None = None
    spaces_index_url: str | None = None
    spaces_extra_index_urls: tuple[str, ...] = ()
    spaces_memory_budget: int = 8 * 2**30
    spaces_start_timeout: float = 300.0
    spaces_default_sleep: int = 48 * 3600
    spaces_sandbox: str = "bwrap"
    # Compute jobs (the Hub's Jobs API, ``hubstead.compute``): whether the hub runs them; how many run at once on
    # this host (slots) and for one namespace; the longest timeout a job may ask for and the one it gets when it
    # asks none; the size past which a job's log keeps only its newest part.
    compute_enabled: bool = True
    compute_slots: int = 2
    compute_per_namespace: int = 2
    compute_max_timeout: int = 24 * 3600
    compute_default_timeout: int = 30 * 60
    compute_log_limit: int = 64 * 2**20
    # Where jobs run: "local" (this host's runner) or "ray" (a Ray cluster's Jobs API at ``ray_address``, the
    # dashboard's http address; ``runner.ray_backend``).
    compute_backend: str = "local"
    ray_address: str | None = None
    # Blob store (``storage/``): None keeps LFS objects under the data dir; ``s3://bucket/prefix`` puts them in
    # an S3 bucket (endpoint for S3-compatible servers; credentials from the usual AWS_* variables). Downloads
    # of LFS files of at least ``s3_presign_min_bytes`` answer 302 to a presigned GET (valid ``s3_presign_ttl``
    # seconds) when ``s3_presign`` is on.
    blob_store: str | None = None
    s3_endpoint: str | None = None
    s3_region: str | None = None
    s3_presign: bool = True
    s3_presign_min_bytes: int = 10 * 2**20
    s3_presign_ttl: int = 3600
    # Storage quotas (``repos/quotas``, docs/quotas.md): each user's and org's bytes in public and in private
    # repos (None: no limit); a site admin overrides them per namespace (``hubstead quotas set``).
    quota_user_bytes: int | None = None
    quota_user_private_bytes: int | None = None
    quota_org_bytes: int | None = None
    quota_org_private_bytes: int | None = None

    @property
    def external_url(self) -> str:
        """Where this hub is reached from outside: ``public_url``, else the address it listens on."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def repos_dir(self) -> Path:
        return self.data_dir / "repos"

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "lfs"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"


# Worker processes (inference, dataset conversion) print no progress bars into the server's log.
QUIET_PROGRESS_ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error",
                      "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}


def default_data_dir() -> Path:
    """``$HUBSTEAD_DATA_DIR``, else one fixed place per user (``$XDG_DATA_HOME/hubstead``, by default
    ``~/.local/share/hubstead``): every ``hubstead`` command finds the same hub whatever its working directory."""
    if explicit := os.environ.get("HUBSTEAD_DATA_DIR"):
        return Path(explicit).expanduser().resolve()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return (Path(base).expanduser() / "hubstead").resolve()


def load_settings(
    *,
    data_dir: str | Path | None = None,
    database_url: str | None = None,
    host: str | None = None,
    port: int | None = None,
    signup_enabled: bool | None = None,
    inference: dict[str, object] | None = None,
    jobs: dict[str, object] | None = None,
    webhooks: dict[str, object] | None = None,
    spaces: dict[str, object] | None = None,
    compute: dict[str, object] | None = None,
    storage: dict[str, object] | None = None,
    quotas: dict[str, object] | None = None,
) -> Settings:
    """Build settings from explicit values, falling back to ``HUBSTEAD_*`` env vars and laptop defaults.

    The data dir is created if missing, and a secret key (used to sign upload URLs) is generated once
    and kept in it so that restarts keep earlier signed URLs valid.
    """
    resolved_dir = Path(data_dir).resolve() if data_dir else default_data_dir()
    resolved_dir.mkdir(parents=True, exist_ok=True)
    url = database_url or os.environ.get("HUBSTEAD_DATABASE_URL") or f"sqlite:///{resolved_dir / 'hubstead.db'}"
    secret = os.environ.get("HUBSTEAD_SECRET_KEY") or _load_or_create_secret(resolved_dir)
    return Settings(
        multipart_chunk_size=_env_int("HUBSTEAD_MULTIPART_CHUNK_SIZE", 64 * 1024 * 1024),
        multipart_threshold=_env_int("HUBSTEAD_MULTIPART_THRESHOLD", 256 * 1024 * 1024),
        max_commit_body_bytes=_env_int("HUBSTEAD_MAX_COMMIT_BODY_BYTES", 512 * 1024 * 1024),
        data_dir=resolved_dir,
        database_url=url,
        host=host or os.environ.get("HUBSTEAD_HOST") or "127.0.0.1",
        port=port or int(os.environ.get("HUBSTEAD_PORT") or 8000),
        secret_key=secret,
        signup_enabled=signup_enabled if signup_enabled is not None else os.environ.get("HUBSTEAD_SIGNUP", "1") != "0",
        signin_failures_per_account=_env_int("HUBSTEAD_SIGNIN_ACCOUNT_BUDGET", Settings.signin_failures_per_account),
        signin_failures_per_address=_env_int("HUBSTEAD_SIGNIN_ADDRESS_BUDGET", Settings.signin_failures_per_address),
        token_failures_per_address=_env_int("HUBSTEAD_TOKEN_ADDRESS_BUDGET", Settings.token_failures_per_address),
        **_job_settings(jobs or {}),
        **_webhook_settings(webhooks or {}),
        **_space_settings(spaces or {}),
        **_compute_settings(compute or {}),
        **_storage_settings(storage or {}),
        **_inference_settings(inference or {}),
        **_quota_settings(quotas or {}),
    )


def _quota_settings(flags: dict[str, object]) -> dict[str, Any]:
    """``--quota-user SIZE`` ... or ``HUBSTEAD_QUOTA_USER`` ...; unset or ``none``: no limit."""
    out: dict[str, Any] = {}
    for name in ("user", "user_private", "org", "org_private"):
        value = flags.get(name)
        text = str(value) if value is not None else os.environ.get(f"HUBSTEAD_QUOTA_{name.upper()}") or ""
        try:
            out[f"quota_{name}_bytes"] = None if text.strip().lower() in ("", "none") else parse_size(text)
        except ValueError as exc:
            raise SystemExit(f"Invalid quota {name.replace('_', ' ')}: {text!r}") from exc
    return out


def parse_size(value: str) -> int:
    """``8GiB``, ``512MiB``, ``2G``, ``1000000`` into bytes."""
    text = value.strip().lower().replace(" ", "")
    for suffix, factor in (("gib", 2**30), ("mib", 2**20), ("kib", 2**10), ("gb", 10**9), ("mb", 10**6),
                           ("kb", 10**3), ("g", 2**30), ("m", 2**20), ("k", 2**10), ("b", 1)):  # fmt: skip
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def _default_inference_memory() -> int:
    """Half of this machine's memory: the rest stays for the hub, the page cache and other work."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError):
        return 8 * 1024**3


def _idle_unload(value: object) -> float:
    seconds = float(str(value)) if value is not None else Settings.inference_idle_unload_seconds
    if not seconds >= 0:  # also refuses NaN
        raise ValueError(f"--inference-idle-unload must be 0 or more seconds, got {value}")
    return seconds


def _inference_settings(flags: dict[str, object]) -> dict[str, Any]:
    def pick(name: str, env: str) -> object:
        value = flags.get(name)
        return value if value is not None else os.environ.get(env)

    memory = pick("memory", "HUBSTEAD_INFERENCE_MEMORY")
    runtime = str(pick("runtime", "HUBSTEAD_INFERENCE_RUNTIME") or "pytorch")
    if runtime not in ("pytorch", "onnx", "onnx-int8"):
        raise SystemExit(f"--inference-runtime must be pytorch, onnx or onnx-int8, got {runtime!r}")
    config = pick("config", "HUBSTEAD_INFERENCE_CONFIG")
    threads = pick("threads", "HUBSTEAD_INFERENCE_THREADS")
    replicas = pick("replicas", "HUBSTEAD_INFERENCE_REPLICAS")
    disabled = flags.get("disabled") or os.environ.get("HUBSTEAD_INFERENCE", "1") == "0"
    load_wait = pick("load_wait", "HUBSTEAD_INFERENCE_LOAD_WAIT")
    try:
        load_wait_seconds = float(str(load_wait)) if load_wait is not None else Settings.inference_load_wait_seconds
        if not load_wait_seconds >= 0:  # also refuses NaN
            raise ValueError(f"--inference-load-wait must be 0 or more seconds, got {load_wait}")
        return {
            "inference_enabled": not disabled,
            "inference_runtime": runtime,
            "inference_memory_bytes": parse_size(str(memory)) if memory else _default_inference_memory(),
            "inference_max_queue": int(str(pick("max_queue", "HUBSTEAD_INFERENCE_MAX_QUEUE") or 256)),
            "inference_device": str(pick("device", "HUBSTEAD_INFERENCE_DEVICE") or "auto"),
            "inference_threads": int(str(threads)) if threads else None,
            "inference_replicas": int(str(replicas)) if replicas else None,
            "inference_config": Path(str(config)).resolve() if config else None,
            "inference_load_wait_seconds": load_wait_seconds,
            "inference_idle_unload_seconds": _idle_unload(pick("idle_unload", "HUBSTEAD_INFERENCE_IDLE_UNLOAD")),
            "metrics_token": os.environ.get("HUBSTEAD_METRICS_TOKEN") or None,
        }
    except ValueError as exc:
        raise SystemExit(f"Invalid inference setting: {exc}") from exc


def _default_job_memory() -> int:
    """What a conversion needs: DuckDB's index build gets a quarter of the machine (at least 2 GiB, see
    ``viewer.search.build_memory_limit``), plus 1 GiB for Python and Arrow."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        total = 8 * 2**30
    return max(2 * 2**30, total // 4) + 2**30


def _job_settings(flags: dict[str, object]) -> dict[str, Any]:
    def pick(name: str, env: str) -> str | None:
        value = flags.get(name)
        return str(value) if value is not None else os.environ.get(env) or None

    workers = pick("workers", "HUBSTEAD_JOB_WORKERS")
    time_limit = pick("time_limit", "HUBSTEAD_JOB_TIME_LIMIT")
    cpu_limit = pick("cpu_limit", "HUBSTEAD_JOB_CPU_LIMIT")
    memory = pick("memory_limit", "HUBSTEAD_JOB_MEMORY_LIMIT")
    try:
        settings: dict[str, Any] = {
            "job_workers": max(1, int(workers)) if workers else max(1, min(2, os.cpu_count() or 1)),
            "job_time_limit": float(time_limit) if time_limit else 600.0,
            "job_memory_limit": parse_size(memory) if memory else _default_job_memory(),
        }
        # The CPU limit follows the time limit unless set: two busy threads for the whole wall time.
        settings["job_cpu_limit"] = int(cpu_limit) if cpu_limit else int(2 * settings["job_time_limit"])
    except ValueError as exc:
        raise SystemExit(f"Invalid job setting: {exc}") from exc
    if min(settings["job_time_limit"], settings["job_cpu_limit"], settings["job_memory_limit"]) < 0:
        raise SystemExit("Job limits must be positive (or 0 for no limit)")
    return settings


def _storage_settings(flags: dict[str, object]) -> dict[str, Any]:
    def pick(name: str, env: str) -> str | None:
        value = flags.get(name)
        return str(value) if value is not None else os.environ.get(env) or None

    store = pick("blob_store", "HUBSTEAD_BLOB_STORE")
    if store and store not in ("local", "") and not store.startswith("s3://"):
        raise SystemExit(f"--blob-store must be 'local' or s3://bucket/prefix, got {store!r}")
    try:
        minimum = pick("presign_min", "HUBSTEAD_S3_PRESIGN_MIN")
        ttl = pick("presign_ttl", "HUBSTEAD_S3_PRESIGN_TTL")
        return {
            "blob_store": store if store and store.startswith("s3://") else None,
            "s3_endpoint": pick("endpoint", "HUBSTEAD_S3_ENDPOINT"),
            "s3_region": pick("region", "HUBSTEAD_S3_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None,
            "s3_presign": (pick("presign", "HUBSTEAD_S3_PRESIGN") or "1") not in ("0", "false", "False"),
            "s3_presign_min_bytes": parse_size(minimum) if minimum else Settings.s3_presign_min_bytes,
            "s3_presign_ttl": int(ttl) if ttl else Settings.s3_presign_ttl,
        }
    except ValueError as exc:
        raise SystemExit(f"Invalid storage setting: {exc}") from exc


def _compute_settings(flags: dict[str, object]) -> dict[str, Any]:
    def pick(name: str, env: str) -> str | None:
        value = flags.get(name)
        return str(value) if value is not None else os.environ.get(env) or None

    try:
        slots = int(pick("slots", "HUBSTEAD_COMPUTE_SLOTS") or max(1, os.cpu_count() or 1))
        per_namespace = int(pick("per_namespace", "HUBSTEAD_COMPUTE_PER_NAMESPACE") or max(1, slots - 1))
        max_timeout = int(pick("max_timeout", "HUBSTEAD_COMPUTE_MAX_TIMEOUT") or 24 * 3600)
        log_limit = pick("log_limit", "HUBSTEAD_COMPUTE_LOG_LIMIT")
        settings: dict[str, Any] = {
            "compute_enabled": not (flags.get("disabled") or os.environ.get("HUBSTEAD_COMPUTE", "1") == "0"),
            "compute_slots": slots,
            "compute_per_namespace": per_namespace,
            "compute_max_timeout": max_timeout,
            "compute_default_timeout": min(max_timeout, 30 * 60),
            "compute_log_limit": parse_size(log_limit) if log_limit else 64 * 2**20,
            "compute_backend": pick("backend", "HUBSTEAD_COMPUTE_BACKEND") or "local",
            "ray_address": pick("ray_address", "HUBSTEAD_RAY_ADDRESS"),
        }
    except ValueError as exc:
        raise SystemExit(f"Invalid compute setting: {exc}") from exc
    if settings["compute_backend"] not in ("local", "ray"):
        raise SystemExit(f"--compute-backend must be local or ray, got {settings['compute_backend']!r}")
    if settings["compute_backend"] == "ray" and not settings["ray_address"]:
        raise SystemExit("--compute-backend ray needs --ray-address (the Ray dashboard, e.g. http://head:8265)")
    if min(slots, per_namespace, max_timeout, settings["compute_log_limit"]) < 1:
        raise SystemExit("Compute slots, the per-namespace limit, the longest timeout and the log limit must be > 0")
    return settings


def _webhook_settings(flags: dict[str, object]) -> dict[str, Any]:
    def pick(name: str, env: str) -> str | None:
        value = flags.get(name)
        return str(value) if value is not None else os.environ.get(env) or None

    public_url = pick("public_url", "HUBSTEAD_PUBLIC_URL")
    if public_url and not public_url.startswith(("http://", "https://")):
        raise SystemExit(f"--public-url must start with http:// or https://, got {public_url!r}")
    allow = flags.get("allow_private") or os.environ.get("HUBSTEAD_WEBHOOKS_ALLOW_PRIVATE", "0") not in ("", "0")
    try:
        settings: dict[str, Any] = {
            "public_url": public_url,
            "webhooks_allow_private": bool(allow),
            "webhooks_timeout": float(pick("timeout", "HUBSTEAD_WEBHOOKS_TIMEOUT") or 10.0),
            "webhooks_max_attempts": int(pick("max_attempts", "HUBSTEAD_WEBHOOKS_MAX_ATTEMPTS") or 5),
            "webhooks_retry_delay": float(pick("retry_delay", "HUBSTEAD_WEBHOOKS_RETRY_DELAY") or 1.0),
        }
    except ValueError as exc:
        raise SystemExit(f"Invalid webhook setting: {exc}") from exc
    timeout, attempts = settings["webhooks_timeout"], settings["webhooks_max_attempts"]
    delay = settings["webhooks_retry_delay"]
    if timeout <= 0 or attempts < 1 or delay < 0:
        raise SystemExit("Webhook timeout and attempts must be positive, the retry delay at least 0")
    return settings


def _space_settings(flags: dict[str, object]) -> dict[str, Any]:
    def pick(name: str, env: str) -> str | None:
        value = flags.get(name)
        return str(value) if value is not None else os.environ.get(env) or None

    domain = pick("domain", "HUBSTEAD_SPACES_DOMAIN")
    if domain and not re.fullmatch(r"[a-z0-9.-]+(:\d+)?", domain.lower()):
        raise SystemExit(f"--spaces-domain must be a host name (like spaces.example.com), got {domain!r}")
    index = pick("index_url", "HUBSTEAD_SPACES_INDEX_URL") or os.environ.get("UV_INDEX_URL") or os.environ.get(
        "PIP_INDEX_URL"
    )
    extra = pick("extra_index_urls", "HUBSTEAD_SPACES_EXTRA_INDEX_URLS")
    sandbox = pick("sandbox", "HUBSTEAD_SPACES_SANDBOX") or "bwrap"
    if sandbox not in ("bwrap", "none"):
        raise SystemExit(f"--spaces-sandbox must be bwrap or none, got {sandbox!r}")
    disabled = flags.get("disabled") or os.environ.get("HUBSTEAD_SPACES", "1") == "0"
    try:
        budget = pick("memory_budget", "HUBSTEAD_SPACES_MEMORY_BUDGET")
        start = pick("start_timeout", "HUBSTEAD_SPACES_START_TIMEOUT")
        sleep = pick("default_sleep", "HUBSTEAD_SPACES_DEFAULT_SLEEP")
        return {
            "spaces_enabled": not disabled,
            "spaces_domain": domain.lower() if domain else None,
            "spaces_index_url": index,
            "spaces_extra_index_urls": tuple(u for u in (extra or "").split() if u),
            "spaces_memory_budget": parse_size(budget) if budget else _default_inference_memory(),
            "spaces_start_timeout": float(start) if start else 300.0,
            "spaces_default_sleep": int(sleep) if sleep else 48 * 3600,
            "spaces_sandbox": sandbox,
        }
    except ValueError as exc:
        raise SystemExit(f"Invalid spaces setting: {exc}") from exc


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise SystemExit(f"{name} must be an integer, got {value!r}") from exc


def _load_or_create_secret(data_dir: Path) -> str:
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_hex(32)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(secret)
    os.chmod(tmp, 0o600)
    try:
        os.link(tmp, path)  # first writer wins when two processes start at once
    except FileExistsError:
        pass
    tmp.unlink(missing_ok=True)
    return path.read_text().strip()
