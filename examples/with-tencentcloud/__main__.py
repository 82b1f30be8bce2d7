"""cdn-prefetch with pulumi-tencentcloud: an EdgeOne site, its acceleration domain, and a prefetch set
that keeps the domain's assets warm once the domain exists.

``components`` is the cdn-prefetch package at the repository root, importable here through the
``components/`` shim in this folder (see its docstring and README.md).
"""

import pulumi
import tencentcloud_iac_pulumi as tencentcloud

from components.engine.args import PrefetchSetArgs
from components.engine.prefetch_set import PrefetchSet, stack_output

config = pulumi.Config()
site = config.get("siteName") or "example.com"
host = config.get("host") or f"static.{site}"
paths = config.get_object("paths") or ["/index.html", "/assets/app.js", "/assets/app.css"]

# The EdgeOne site and its acceleration domain, managed by pulumi-tencentcloud.
zone = tencentcloud.teo.Zone(
    "site",
    zone_name=site,
    type="partial",  # CNAME access
    area=config.get("area") or "overseas",
    plan_id=config.require("planId"),
)
domain = tencentcloud.teo.AccelerationDomain(
    "static",
    zone_id=zone.id,
    domain_name=host,
    origin_info={"origin_type": "IP_DOMAIN", "origin": config.get("origin") or f"origin.{site}"},
)

# The prefetch set: the zone id flows in from the zone resource (unknown until the zone exists, so the
# preview of a new stack plans a create), and depends_on holds the prefetch back until the domain exists.
assets = PrefetchSet(
    "site-assets",
    PrefetchSetArgs(
        description=f"Front-end bundle on {host}",
        provider="edgeone",
        zone=zone.id,
        targets=[f"https://{host}{path}" for path in paths],
        freshness="24h",
        wait="2m",
    ),
    pulumi.ResourceOptions(depends_on=[domain]),
)

pulumi.export("zoneId", zone.id)
pulumi.export("inSync", assets.in_sync)
pulumi.export("drifted", assets.drifted)
# The same audit record as the YAML-driven project (schemas/stack-outputs.schema.json).
pulumi.export("prefetch", stack_output({"site-assets": assets.audit}))
