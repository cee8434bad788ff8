"""Imports every domain's tables so that Alembic and ``create_all`` see the whole schema."""


def load_all_models() -> None:
    from hubstead.auth import audit as _audit  # noqa: F401
    from hubstead.auth import models as _auth  # noqa: F401
    from hubstead.buckets import models as _buckets  # noqa: F401
    from hubstead.collections import models as _collections  # noqa: F401
    from hubstead.compute import models as _compute  # noqa: F401
    from hubstead.coordination import models as _coordination  # noqa: F401
    from hubstead.discussions import models as _discussions  # noqa: F401
    from hubstead.evals import models as _evals  # noqa: F401
    from hubstead.jobs import models as _jobs  # noqa: F401
    from hubstead.repos import events as _events  # noqa: F401
    from hubstead.repos import models as _repos  # noqa: F401
    from hubstead.repos import quotas as _quotas  # noqa: F401
    from hubstead.spaces import models as _spaces  # noqa: F401
    from hubstead.viewer import store as _viewer  # noqa: F401
    from hubstead.webhooks import models as _webhooks  # noqa: F401
    from hubstead.xet.cas import models as _xet  # noqa: F401
