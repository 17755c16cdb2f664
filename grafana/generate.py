#!/usr/bin/env python3
"""Generate the mailcanary Grafana dashboards into grafana/dashboards/.

    python3 grafana/generate.py           # (re)write the JSON files
    python3 grafana/generate.py --check   # exit 1 if a committed file differs

The JSON is committed so Grafana can provision it as is; tests/dashboards.rs runs
`--check` so that the files never drift from this script. Standard library only.

Every panel and query uses the `datasource` template variable, and every rate() or
increase() uses $__rate_interval.

A fleet (one mailcanary per network vantage point, see README "Running at scale") reaches
Prometheus with a `vantage` label that the collecting side adds; the exporter itself has
none. Every query filters on the `vantage` variable (multi-value, "All" = `.*`, which also
matches series without the label) and keeps `vantage` in every aggregation, and every
legend ends with it, so each vantage's series stay apart. Without the label the variable
offers only "All", the legends end in an invisible space, and nothing else changes. Probe events are sparse (one probe per route and seed
per round, 5 minutes by default), so panels that turn counters into shares or
percentiles set a 15-minute minimum interval: $__rate_interval then spans at least
three rounds.
"""
import json
import pathlib
import sys

OUT_DIR = pathlib.Path(__file__).resolve().parent / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
RI = "[$__rate_interval]"
SPARSE_INTERVAL = "15m"
# DMARC aggregate and TLS reports arrive about once a day per reporter: their panels look at
# a day at least, so $__rate_interval spans a whole reporting period.
REPORT_INTERVAL = "1d"

PLACEMENT_CODES = [
    # (code, placement label, text, color); 0 = no probe judged yet (pre-initialised).
    (1, "inbox", "Inbox", "green"),
    (2, "other", "Other folder", "yellow"),
    (3, "spam", "Spam", "orange"),
    (4, "missing", "Missing", "red"),
    (5, "unknown", "Unknown", "purple"),
    (6, "rejected", "Rejected", "dark-red"),
]


def matchers(*parts):
    return "{" + ", ".join(p for p in parts if p) + "}"


VANTAGE = 'vantage=~"$vantage"'


def by(*labels):
    """An aggregation's label list: always the vantage first, then `labels`."""
    return ", ".join(("vantage",) + labels)


class Sel:
    """Label matchers of one dashboard: multi-value (=~) or a single route and seed; the
    vantage is always multi-value."""

    def __init__(self, multi):
        op = "=~" if multi else "="
        self.route = 'route%s"$route"' % op
        self.seed = 'seed%s"$seed"' % op

    def rs(self, *extra):
        return matchers(VANTAGE, self.route, self.seed, *extra)

    def r(self, *extra):
        return matchers(VANTAGE, self.route, *extra)

    def s(self, *extra):
        return matchers(VANTAGE, self.seed, *extra)


# ---------------------------------------------------------------------------------------
# PromQL pieces


def outcomes(sel, by):
    """Probes judged in the window: read back (any folder), missing, unreadable or refused
    (every class of refusal)."""
    return " + ".join(
        "sum by (%s) (increase(%s%s%s))" % (by, metric, sel.rs(), RI)
        for metric in (
            "mailcanary_probes_received_total",
            "mailcanary_probes_missing_total",
            "mailcanary_probes_unknown_total",
            "mailcanary_probes_rejected_total",
        )
    )


def share(sel, numerator_metric, extra, by=by("route", "seed")):
    return "sum by (%s) (increase(%s%s%s))\n/\n(%s)" % (
        by,
        numerator_metric,
        sel.rs(*extra),
        RI,
        outcomes(sel, by),
    )


def placement_code(sel):
    """The latest placement as one number per route and seed (see PLACEMENT_CODES)."""
    terms = "\n  or ".join(
        'mailcanary_last_placement%s * %d' % (sel.rs('placement="%s"' % name), code)
        for code, name, _, _ in PLACEMENT_CODES
    )
    return "max by (%s) (\n  %s\n)" % (by("route", "seed"), terms)


def quantile(q, metric, sel_str, labels):
    return "histogram_quantile(%s, sum by (%s) (rate(%s_bucket%s%s)))" % (
        q,
        by(*labels, "le"),
        metric,
        sel_str,
        RI,
    )


# ---------------------------------------------------------------------------------------
# Panel JSON


def target(expr, legend="", ref="A", instant=False, fmt="time_series"):
    """One query. A time series' legend ends with its vantage (empty without the label)."""
    if fmt == "time_series":
        legend = (legend + " {{vantage}}").lstrip()
    return {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "format": fmt,
        "instant": instant,
        "legendFormat": legend,
        "range": not instant,
        "refId": ref,
    }


def targets(*pairs, **kw):
    return [
        target(expr, legend, ref=chr(ord("A") + i), **kw)
        for i, (expr, legend) in enumerate(pairs)
    ]


def thresholds(*steps):
    """steps: (color, from-value) pairs; the first one is the base (value None)."""
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for color, value in steps],
    }


def value_map(entries):
    return [
        {
            "type": "value",
            "options": {
                str(value): {"text": text, "color": color, "index": i}
                for i, (value, text, color) in enumerate(entries)
            },
        }
    ]


PLACEMENT_MAP = value_map(
    [(0, "No probe yet", "text")] + [(c, t, col) for c, _, t, col in PLACEMENT_CODES]
)
PASS_MAP = value_map([(0, "Fail", "red"), (1, "Pass", "green")])
CHECK_MAP = value_map([(0, "Failing", "red"), (1, "OK", "green")])
LISTED_MAP = value_map([(0, "Not listed", "green"), (1, "Listed", "red")])


def panel(kind, title, description, tgts, w, h, unit=None, **extra):
    defaults = {}
    if unit:
        defaults["unit"] = unit
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": tgts,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {},
        "_size": (w, h),
    }
    for key, value in extra.items():
        if key in ("min", "max", "mappings", "thresholds", "decimals", "custom", "color", "links"):
            defaults[key] = value
        elif key == "overrides":
            p["fieldConfig"]["overrides"] = value
        else:
            p[key] = value
    return p


LEGEND_TABLE = {"displayMode": "table", "placement": "right", "showLegend": True, "calcs": ["lastNotNull"]}
LEGEND_LIST = {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []}


def timeseries(title, description, tgts, w=12, h=8, unit=None, bars=False, stack=False,
               legend=LEGEND_LIST, **extra):
    custom = {
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 80 if bars else 10,
        "lineWidth": 1,
        "pointSize": 4,
        "showPoints": "never" if bars else "auto",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
    }
    p = panel("timeseries", title, description, tgts, w, h, unit, custom=custom, **extra)
    p["options"] = {"legend": legend, "tooltip": {"mode": "multi", "sort": "desc"}}
    return p


def stat(title, description, tgts, w=6, h=4, unit=None, text_mode="auto", color_mode="background",
         **extra):
    p = panel("stat", title, description, tgts, w, h, unit, **extra)
    p["options"] = {
        "colorMode": color_mode,
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "textMode": text_mode,
    }
    return p


def state_timeline(title, description, tgts, mappings, w=24, h=8, **extra):
    p = panel("state-timeline", title, description, tgts, w, h, mappings=mappings,
              color={"mode": "thresholds"}, thresholds=thresholds(("text", None)), **extra)
    p["options"] = {
        "alignValue": "left",
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
        "mergeValues": True,
        "rowHeight": 0.9,
        "showValue": "never",
        "tooltip": {"mode": "single", "sort": "none"},
    }
    return p


def table(title, description, tgts, columns, w=12, h=8, **extra):
    keep = set(columns)
    p = panel("table", title, description, tgts, w, h, **extra)
    p["options"] = {"cellHeight": "sm", "showHeader": True, "footer": {"show": False}}
    p["transformations"] = [
        {
            "id": "organize",
            "options": {
                "excludeByName": {
                    name: True
                    for name in ("Time", "Value", "__name__", "job", "instance")
                    if name not in keep
                },
                "indexByName": {name: i for i, name in enumerate(columns)},
                "renameByName": {},
            },
        },
    ]
    return p


def bargauge(title, description, tgts, w=12, h=8, unit=None, **extra):
    p = panel("bargauge", title, description, tgts, w, h, unit, **extra)
    p["options"] = {
        "displayMode": "gradient",
        "orientation": "horizontal",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showUnfilled": True,
        "valueMode": "color",
    }
    return p


def heatmap(title, description, expr, w=12, h=8):
    p = panel("heatmap", title, description,
              [target(expr, "{{le}}", fmt="heatmap")], w, h, interval=SPARSE_INTERVAL)
    p["options"] = {
        "calculate": False,
        "cellGap": 1,
        "color": {"mode": "scheme", "scheme": "Oranges", "fill": "dark", "scale": "exponential",
                  "exponent": 0.5, "steps": 64, "reverse": False},
        "filterValues": {"le": 1e-09},
        "legend": {"show": True},
        "rowsFrame": {"layout": "auto"},
        "tooltip": {"mode": "single", "yHistogram": False},
        "yAxis": {"axisPlacement": "left", "unit": "s", "reverse": False},
    }
    return p


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_size": (24, 1)}


# ---------------------------------------------------------------------------------------
# Dashboard assembly


def layout(items):
    """Place panels left to right, wrapping at 24 columns; rows start a new line."""
    x = y = line_h = 0
    out = []
    for pid, item in enumerate(items, start=1):
        w, h = item.pop("_size")
        if item["type"] == "row" or x + w > 24:
            x, y = 0, y + line_h
            line_h = 0
        item["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        item["id"] = pid
        x += w
        line_h = max(line_h, h)
        if item["type"] == "row":
            x, y, line_h = 0, y + h, 0
        out.append(item)
    return out


def datasource_var():
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def query_var(name, label, query, multi):
    v = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "current": {},
        "hide": 0,
        "includeAll": multi,
        "multi": multi,
        "options": [],
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
    }
    if multi:
        v["allValue"] = ".*"
    return v


def vantage_var():
    """The vantage points of a fleet (the label the collecting side adds). Multi-value with
    "All" (`.*`): with no `vantage` label anywhere, "All" is the only option and matches
    every series, so a single instance sees no difference."""
    return query_var("vantage", "Vantage", "label_values(mailcanary_probes_sent_total, vantage)", True)


def dashboard(uid, title, description, variables, items):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["mailcanary"],
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-24h", "to": "now"},
        "timezone": "",
        "refresh": "1m",
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "links": [
            {
                "title": "mailcanary dashboards",
                "type": "dashboards",
                "tags": ["mailcanary"],
                "asDropdown": False,
                "includeVars": True,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "annotations": {
            "list": [
                {
                    "name": "mailcanary alerts",
                    "datasource": DS,
                    "enable": True,
                    "hide": False,
                    "iconColor": "red",
                    "expr": 'ALERTS{alertname=~"Mailcanary.*", alertstate="firing", %s}' % VANTAGE,
                    "step": "60s",
                    "titleFormat": "{{alertname}}",
                    "textFormat": "{{route}} {{seed}} ({{severity}}) {{vantage}}",
                    "tagKeys": "severity",
                    "useValueForTime": False,
                }
            ]
        },
        "templating": {"list": [datasource_var()] + variables},
        "panels": layout(items),
    }


PROBE_LINK = [
    {
        "title": "Open the probe dashboard for ${__data.fields.route} / ${__data.fields.seed}",
        "url": "/d/mailcanary-probe/mailcanary-probe?var-route=${__data.fields.route}"
        "&var-seed=${__data.fields.seed}&${datasource:queryparam}&${__url_time_range}",
    }
]


# ---------------------------------------------------------------------------------------
# Shared panel groups


def auth_panels(sel, by_legend):
    pass_rate = (
        "sum by (%s) (increase(mailcanary_auth_results_total%s%s))\n/\n"
        "sum by (%s) (increase(mailcanary_auth_results_total%s%s))"
        % (by("method"), sel.rs('result="pass"'), RI, by("method"), sel.rs(), RI)
    )
    return [
        timeseries(
            "Authentication pass rate by method",
            "Share of probes read back whose receiver reported pass, per method "
            "(Authentication-Results, RFC 8601).",
            targets((pass_rate, "{{method}}")),
            unit="percentunit", min=0, max=1, interval=SPARSE_INTERVAL,
        ),
        timeseries(
            "Non-pass authentication results",
            "Results other than pass, by method and result.",
            targets((
                "sum by (%s) (increase(mailcanary_auth_results_total%s%s))"
                % (by("method", "result"), sel.rs('result!="pass"'), RI),
                "{{method}} {{result}}",
            )),
            unit="short", bars=True, stack=True,
        ),
        state_timeline(
            "Latest SPF / DKIM / DMARC verdict",
            "mailcanary_last_auth_pass: 1 if the latest probe got pass for the method.",
            targets(("mailcanary_last_auth_pass%s" % sel.rs(), by_legend + " {{method}}")),
            PASS_MAP,
        ),
    ]


def latency_panels(sel, labels, legend):
    metric = "mailcanary_delivery_duration_seconds"
    return [
        timeseries(
            "Delivery latency percentiles",
            "Time from SMTP submission to the probe being visible over IMAP.",
            targets(
                (quantile("0.5", metric, sel.rs(), labels), ("p50 " + legend).strip()),
                (quantile("0.9", metric, sel.rs(), labels), ("p90 " + legend).strip()),
                (quantile("0.99", metric, sel.rs(), labels), ("p99 " + legend).strip()),
            ),
            unit="s", interval=SPARSE_INTERVAL,
        ),
        heatmap(
            "Delivery latency heatmap",
            "Probes per delivery-time bucket, every selected vantage together.",
            "sum by (le) (increase(%s_bucket%s%s))" % (metric, sel.rs(), RI),
        ),
        timeseries(
            "SMTP submission time",
            "Time for the submission server to accept a probe, by route.",
            targets(
                (quantile("0.5", "mailcanary_smtp_send_duration_seconds", sel.r(), ["route"]),
                 "p50 {{route}}"),
                (quantile("0.9", "mailcanary_smtp_send_duration_seconds", sel.r(), ["route"]),
                 "p90 {{route}}"),
            ),
            unit="s", interval=SPARSE_INTERVAL,
        ),
        timeseries(
            "Send failures by reason",
            "Probes the submission server did not accept, by route and fixed reason.",
            targets((
                "sum by (%s) (increase(mailcanary_send_failures_total%s%s))"
                % (by("route", "reason"), sel.r(), RI),
                "{{route}} {{reason}}",
            )),
            unit="short", bars=True, stack=True,
        ),
    ]


def dns_panels(sel):
    return [
        state_timeline(
            "DNS audit checks",
            "mailcanary_dns_check_ok per route and check (ptr, fcrdns, spf, dkim, dmarc, "
            "dnsbl, mx, mta_sts, tls_rpt). mta_sts and tls_rpt are optional and do not alert.",
            targets(("mailcanary_dns_check_ok%s" % sel.r(), "{{route}} {{check}}")),
            CHECK_MAP, w=12, h=10,
        ),
        state_timeline(
            "DNS blocklist listings",
            "mailcanary_dnsbl_listed: the sending IP of the route on each blocklist zone.",
            targets(("mailcanary_dnsbl_listed%s" % sel.r(), "{{route}} {{zone}}")),
            LISTED_MAP, w=12, h=10,
        ),
        stat(
            "DKIM key size",
            "Bits of the published DKIM key. RFC 8301 §3.2: under 1024 is ignored, 2048 "
            "is recommended.",
            targets(("mailcanary_dkim_key_bits%s" % sel.r(), "{{route}}")),
            w=12, unit="none",
            thresholds=thresholds(("red", None), ("orange", 1024), ("green", 2048)),
        ),
        stat(
            "SPF DNS lookups",
            "DNS lookups needed to evaluate the SPF record. RFC 7208 §4.6.4: more than 10 is "
            "a permerror.",
            targets(("mailcanary_spf_dns_lookups%s" % sel.r(), "{{route}}")),
            w=12, unit="none",
            thresholds=thresholds(("green", None), ("orange", 9), ("red", 11)),
        ),
    ]


# ---------------------------------------------------------------------------------------
# Dashboards


def overview():
    sel = Sel(multi=True)
    rs = "{{route}} → {{seed}}"
    items = [
        row("Status"),
        stat(
            "Since last completed round",
            "Time since mailcanary finished its last probe round.",
            targets(("time() - max by (vantage) (mailcanary_last_round_timestamp_seconds%s)"
                     % matchers(VANTAGE), "")),
            unit="s", color_mode="none",
        ),
        stat(
            "Round age in intervals",
            "Time since the last round divided by the configured interval. "
            "MailcanaryProbeStale fires above 2.",
            targets((
                "(time() - max by (vantage) (mailcanary_last_round_timestamp_seconds%s))\n"
                "/ max by (vantage) (mailcanary_round_interval_seconds%s)"
                % (matchers(VANTAGE), matchers(VANTAGE)),
                "",
            )),
            unit="none", decimals=1,
            thresholds=thresholds(("green", None), ("orange", 1.5), ("red", 2)),
        ),
        stat(
            "Exporter up",
            'up{job="mailcanary"} for each scraped instance.',
            targets(('up%s' % matchers('job="mailcanary"', VANTAGE), "{{instance}}")),
            mappings=value_map([(0, "Down", "red"), (1, "Up", "green")]),
        ),
        stat(
            "Firing mailcanary alerts",
            "Alerts in state firing, by severity, from every selected vantage together.",
            targets(
                ('count(ALERTS{alertname=~"Mailcanary.*", alertstate="firing", '
                 'severity="critical", %s}) or vector(0)' % VANTAGE, "critical"),
                ('count(ALERTS{alertname=~"Mailcanary.*", alertstate="firing", '
                 'severity="warning", %s}) or vector(0)' % VANTAGE, "warning"),
            ),
            thresholds=thresholds(("green", None), ("red", 1)),
        ),
        table(
            "Latest placement",
            "Where the latest probe of each route and seed ended up. Click a seed to open "
            "the probe dashboard.",
            targets(("mailcanary_last_placement%s == 1" % sel.rs(), ""), instant=True, fmt="table"),
            ["vantage", "route", "seed", "placement"],
            overrides=[{"matcher": {"id": "byName", "options": "seed"},
                        "properties": [{"id": "links", "value": PROBE_LINK}]}],
        ),
        bargauge(
            "Since last good probe",
            "Time since the probe last landed in the inbox with SPF, DKIM and DMARC pass. "
            "Colours assume the default 5-minute schedule.",
            targets(("time() - mailcanary_last_success_timestamp_seconds%s" % sel.rs(), rs)),
            unit="s",
            thresholds=thresholds(("green", None), ("orange", 900), ("red", 1800)),
        ),
        row("Placement"),
        state_timeline(
            "Placement history",
            "Latest placement per route and seed over time.",
            targets((placement_code(sel), rs)),
            PLACEMENT_MAP,
        ),
        timeseries(
            "Inbox share",
            "Share of judged probes (read back, missing, unreadable or refused) that landed in "
            "the inbox.",
            targets((share(sel, "mailcanary_probes_received_total", ['placement="inbox"']), rs)),
            w=8, unit="percentunit", min=0, max=1, interval=SPARSE_INTERVAL,
        ),
        timeseries(
            "Spam share",
            "Share of judged probes that landed in the spam folder.",
            targets((share(sel, "mailcanary_probes_received_total", ['placement="spam"']), rs)),
            w=8, unit="percentunit", min=0, max=1, interval=SPARSE_INTERVAL,
        ),
        timeseries(
            "Missing share",
            "Share of judged probes that never arrived before the deadline.",
            targets((share(sel, "mailcanary_probes_missing_total", []), rs)),
            w=8, unit="percentunit", min=0, max=1, interval=SPARSE_INTERVAL,
        ),
        timeseries(
            "Probes sent",
            "Probes accepted by the submission server.",
            targets((
                "sum by (%s) (increase(mailcanary_probes_sent_total%s%s))"
                % (by("route", "seed"), sel.rs(), RI),
                rs,
            )),
            w=8, unit="short", bars=True, stack=True,
        ),
        timeseries(
            "Late and unknown probes",
            "Late: arrived after being counted missing. Unknown: the seed mailbox could not "
            "be read.",
            targets(
                ("sum by (%s) (increase(mailcanary_probes_late_total%s%s))"
                 % (by("route", "seed"), sel.rs(), RI), "late " + rs),
                ("sum by (%s) (increase(mailcanary_probes_unknown_total%s%s))"
                 % (by("route", "seed"), sel.rs(), RI), "unknown " + rs),
            ),
            w=8, unit="short", bars=True, stack=True,
        ),
        timeseries(
            "Spam score",
            "Spam score the receiver gave the latest probe (scale depends on the receiver's "
            "filter).",
            targets(("mailcanary_spam_score%s" % sel.rs(), rs)),
            w=8, unit="none",
        ),
        timeseries(
            "Rejected probes by class",
            "Probes the receiving server refused (a bounce came back), by route, seed and kind "
            "of refusal: auth, ptr, blocklist, policy, rate_limit, recipient, other. "
            "MailcanaryProbeRejected fires when the latest probe of a pair stays refused.",
            targets((
                "sum by (%s) (increase(mailcanary_probes_rejected_total%s%s))"
                % (by("route", "seed", "class"), sel.rs(), RI),
                rs + " {{class}}",
            )),
            w=16, unit="short", bars=True, stack=True,
        ),
        timeseries(
            "Bounces read",
            "Bounces and delay notices of the route's probes read from its bounce mailbox. "
            "A delay notice (4.x.x: the probe is deferred, still in flight) shows only here.",
            targets((
                "sum by (%s) (increase(mailcanary_bounces_total%s%s))"
                % (by("route"), sel.r(), RI),
                "{{route}}",
            )),
            w=8, unit="short", bars=True, stack=True,
        ),
        row("Authentication"),
        *auth_panels(sel, rs),
        row("Delivery and sending"),
        *latency_panels(sel, ["route", "seed"], rs),
        row("Seed mailboxes"),
        timeseries(
            "IMAP errors by reason",
            "Errors reading the seed mailboxes, by seed and fixed reason.",
            targets((
                "sum by (%s) (increase(mailcanary_imap_errors_total%s%s))"
                % (by("seed", "reason"), sel.s(), RI),
                "{{seed}} {{reason}}",
            )),
            unit="short", bars=True, stack=True,
        ),
        timeseries(
            "Forged probes",
            "Mail carrying a probe tag whose signature does not verify.",
            targets((
                "sum by (%s) (increase(mailcanary_forged_probes_total%s%s))"
                % (by("seed"), sel.s(), RI),
                "{{seed}}",
            )),
            unit="short", bars=True,
        ),
        row("DNS audit and diagnosis"),
        *dns_panels(sel),
        table(
            "Current diagnosis",
            "The diagnosed cause for each failing probe (mailcanary_diagnosis == 1).",
            targets(("mailcanary_diagnosis%s == 1" % sel.rs(), ""), instant=True, fmt="table"),
            ["vantage", "route", "seed", "cause"],
            overrides=[{"matcher": {"id": "byName", "options": "seed"},
                        "properties": [{"id": "links", "value": PROBE_LINK}]}],
        ),
        timeseries(
            "Diagnosed causes over time",
            "Number of route and seed pairs with each diagnosed cause.",
            targets(("count by (%s) (mailcanary_diagnosis%s == 1)" % (by("cause"), sel.rs()),
                     "{{cause}}")),
            unit="short", bars=True, stack=True,
        ),
        row("Exporter"),
        stat(
            "Version",
            "mailcanary_build_info.",
            targets(("mailcanary_build_info%s" % matchers(VANTAGE), "{{version}}")),
            w=8, text_mode="name", color_mode="none",
        ),
        timeseries(
            "Resident memory",
            "process_resident_memory_bytes of mailcanary.",
            targets(('process_resident_memory_bytes%s' % matchers('job="mailcanary"', VANTAGE),
                     "{{instance}}")),
            w=8, unit="bytes",
        ),
        timeseries(
            "CPU",
            "CPU seconds per second used by mailcanary.",
            targets(('rate(process_cpu_seconds_total%s%s)' % (matchers('job="mailcanary"', VANTAGE), RI),
                     "{{instance}}")),
            w=8, unit="percentunit",
        ),
    ]
    return dashboard(
        "mailcanary-overview",
        "mailcanary / Overview",
        "Inbox placement, authentication, latency and DNS audit of every route and seed.",
        [
            vantage_var(),
            query_var("route", "Route", 'label_values(mailcanary_probes_sent_total{%s}, route)'
                      % VANTAGE, True),
            query_var("seed", "Seed", 'label_values(mailcanary_probes_sent_total{%s, route=~"$route"}, seed)'
                      % VANTAGE, True),
        ],
        items,
    )


def probe():
    sel = Sel(multi=False)
    items = [
        row("Now"),
        stat(
            "Latest placement",
            "Where the latest probe ended up.",
            targets((placement_code(sel), "")),
            mappings=PLACEMENT_MAP,
            thresholds=thresholds(("text", None)),
        ),
        stat(
            "Since last good probe",
            "Time since the probe last landed in the inbox with SPF, DKIM and DMARC pass.",
            targets(("time() - mailcanary_last_success_timestamp_seconds%s" % sel.rs(), "")),
            unit="s", color_mode="none",
        ),
        stat(
            "Latest SPF / DKIM / DMARC",
            "mailcanary_last_auth_pass of the latest probe.",
            targets(("mailcanary_last_auth_pass%s" % sel.rs(), "{{method}}")),
            mappings=PASS_MAP,
        ),
        stat(
            "Spam score",
            "Spam score the receiver gave the latest probe.",
            targets(("mailcanary_spam_score%s" % sel.rs(), "")),
            color_mode="none",
        ),
        table(
            "Current diagnosis",
            "The diagnosed cause if the latest probe failed (mailcanary_diagnosis == 1). "
            "Run `mailcanary check-dns` and `mailcanary inspect` as in docs/runbook.md.",
            targets(("mailcanary_diagnosis%s == 1" % sel.rs(), ""), instant=True, fmt="table"),
            ["vantage", "cause"], w=24, h=4,
        ),
        row("History"),
        state_timeline(
            "Placement history",
            "Latest placement over time.",
            targets((placement_code(sel), "placement")),
            PLACEMENT_MAP, h=4,
        ),
        timeseries(
            "Probe outcomes",
            "Probes read back by folder, missing, late, unreadable, and refused by the "
            "receiving server by kind of refusal.",
            targets(
                ("sum by (%s) (increase(mailcanary_probes_received_total%s%s))"
                 % (by("placement"), sel.rs(), RI), "{{placement}}"),
                ("sum by (%s) (increase(mailcanary_probes_missing_total%s%s))"
                 % (by(), sel.rs(), RI), "missing"),
                ("sum by (%s) (increase(mailcanary_probes_late_total%s%s))"
                 % (by(), sel.rs(), RI), "late"),
                ("sum by (%s) (increase(mailcanary_probes_unknown_total%s%s))"
                 % (by(), sel.rs(), RI), "unknown"),
                ("sum by (%s) (increase(mailcanary_probes_rejected_total%s%s))"
                 % (by("class"), sel.rs(), RI), "rejected {{class}}"),
            ),
            unit="short", bars=True, stack=True,
        ),
        timeseries(
            "Spam score",
            "Spam score of the latest probe over time.",
            targets(("mailcanary_spam_score%s" % sel.rs(), "score")),
            unit="none",
        ),
        timeseries(
            "Bounces read for the route",
            "Bounces and delay notices of this route's probes (every seed) read from its bounce "
            "mailbox. A delay notice (4.x.x: the probe is deferred, still in flight) shows only "
            "here.",
            targets((
                "sum by (%s) (increase(mailcanary_bounces_total%s%s))" % (by(), sel.r(), RI),
                "bounces",
            )),
            w=24, h=6, unit="short", bars=True,
        ),
        row("Authentication"),
        *auth_panels(sel, "latest"),
        row("Delivery and sending"),
        *latency_panels(sel, [], ""),
        row("Seed mailbox"),
        timeseries(
            "IMAP errors by reason",
            "Errors reading this seed's mailbox.",
            targets((
                "sum by (%s) (increase(mailcanary_imap_errors_total%s%s))"
                % (by("reason"), sel.s(), RI),
                "{{reason}}",
            )),
            unit="short", bars=True, stack=True,
        ),
        timeseries(
            "Forged probes",
            "Mail in this seed carrying a probe tag whose signature does not verify.",
            targets((
                "sum by (%s) (increase(mailcanary_forged_probes_total%s%s))" % (by(), sel.s(), RI),
                "forged",
            )),
            unit="short", bars=True,
        ),
        row("DNS audit of the route"),
        *dns_panels(sel),
    ]
    return dashboard(
        "mailcanary-probe",
        "mailcanary / Probe",
        "One route and seed: placement, authentication, latency, diagnosis and the route's "
        "DNS audit.",
        [
            vantage_var(),
            query_var("route", "Route", 'label_values(mailcanary_probes_sent_total{%s}, route)'
                      % VANTAGE, False),
            query_var("seed", "Seed", 'label_values(mailcanary_probes_sent_total{%s, route="$route"}, seed)'
                      % VANTAGE, False),
        ],
        items,
    )


def reports():
    dr = VANTAGE + ', domain=~"$domain", reporter=~"$reporter"'
    msgs = "mailcanary_dmarc_messages_total"

    def day(metric, *extra):
        return "increase(%s%s%s)" % (metric, matchers(dr, *extra), RI)

    items = [
        row("DMARC aggregate reports (RFC 7489)"),
        timeseries(
            "DMARC pass share per reporter",
            "Share of the messages each receiver reported for the domain that passed DMARC "
            "(aligned DKIM or aligned SPF), over a reporting day. Below 1: someone sends as the "
            "domain without authentication — see the failing sources on the status page or "
            "/api/reports.",
            targets((
                "1 - (\n  sum by (%s) (%s)\n  /\n  sum by (%s) (%s)\n)"
                % (by("domain", "reporter"), day(msgs, 'dkim="fail"', 'spf="fail"'),
                   by("domain", "reporter"), day(msgs)),
                "{{domain}} {{reporter}}",
            )),
            unit="percentunit", min=0, max=1, interval=REPORT_INTERVAL,
        ),
        timeseries(
            "Messages reported per reporter",
            "Messages claiming the domain that each receiver counted, per reporting day.",
            targets((
                "sum by (%s) (%s)" % (by("domain", "reporter"), day(msgs)),
                "{{domain}} {{reporter}}",
            )),
            unit="short", interval=REPORT_INTERVAL,
        ),
        timeseries(
            "Aligned DKIM and SPF",
            "Messages with aligned DKIM and with aligned SPF (policy-evaluated), per reporting "
            "day. DKIM survives forwarding; SPF does not.",
            targets(
                ("sum by (%s) (%s)" % (by("domain"), day(msgs, 'dkim="pass"')), "{{domain}} dkim aligned"),
                ("sum by (%s) (%s)" % (by("domain"), day(msgs, 'spf="pass"')), "{{domain}} spf aligned"),
            ),
            unit="short", interval=REPORT_INTERVAL,
        ),
        timeseries(
            "Disposition applied",
            "What the receivers did with the messages: none (delivered), quarantine (spam), "
            "reject.",
            targets((
                "sum by (%s) (%s)" % (by("domain", "disposition"), day(msgs)),
                "{{domain}} {{disposition}}",
            )),
            unit="short", bars=True, stack=True, interval=REPORT_INTERVAL,
        ),
        table(
            "Newest report per reporter",
            "Seconds since the end of the period the newest DMARC report of each reporter "
            "covers. More than three days for a major reporter raises "
            "MailcanaryDMARCReportsStopped.",
            targets((
                "time() - mailcanary_dmarc_last_report_timestamp_seconds%s" % matchers(dr),
                "",
            ), instant=True, fmt="table"),
            ["vantage", "domain", "reporter", "Value"], w=12, h=8,
        ),
        row("SMTP TLS reports (RFC 8460)"),
        timeseries(
            "TLS sessions to the MX",
            "Successful and failed SMTP TLS sessions to the domain's MX that sending servers "
            "reported, per reporting day.",
            targets((
                "sum by (%s) (increase(mailcanary_tls_sessions_total%s%s))"
                % (by("domain", "result"), matchers(dr), RI),
                "{{domain}} {{result}}",
            )),
            unit="short", bars=True, stack=True, interval=REPORT_INTERVAL,
        ),
        timeseries(
            "TLS failures by type",
            "Failed sessions by RFC 8460 result type (certificate-expired, "
            "starttls-not-supported, sts-policy-fetch-error, ...).",
            targets((
                "sum by (%s) (increase(mailcanary_tls_failures_total%s%s))"
                % (by("domain", "result_type"), matchers(dr), RI),
                "{{domain}} {{result_type}}",
            )),
            unit="short", bars=True, stack=True, interval=REPORT_INTERVAL,
        ),
        row("Report mailboxes"),
        timeseries(
            "Unreadable reports",
            "Mails in a report mailbox that looked like a report and could not be read, by "
            "reason (they stay in the mailbox; `mailcanary inspect` says why).",
            targets((
                "sum by (%s) (increase(mailcanary_report_errors_total%s%s))"
                % (by("mailbox", "reason"), matchers(VANTAGE), RI),
                "{{mailbox}} {{reason}}",
            )),
            unit="short", bars=True, interval=SPARSE_INTERVAL,
        ),
        stat(
            "Since last read",
            "Time since each report mailbox was last read completely (the top failing source "
            "IPs with their reverse names are on the status page and at /api/reports).",
            targets((
                "time() - mailcanary_report_mailbox_last_read_timestamp_seconds%s" % matchers(VANTAGE),
                "{{mailbox}}",
            )),
            w=12, unit="s", color_mode="none",
        ),
    ]
    return dashboard(
        "mailcanary-reports",
        "mailcanary / Reports",
        "What receivers report about all mail claiming the domain: DMARC aggregate reports "
        "(alignment per reporter, dispositions) and SMTP TLS reports, read from the report "
        "mailboxes.",
        [
            query_var("vantage", "Vantage", "label_values(mailcanary_dmarc_reports_total, vantage)", True),
            query_var("domain", "Domain", 'label_values(mailcanary_dmarc_reports_total{%s}, domain)' % VANTAGE, True),
            query_var("reporter", "Reporter",
                      'label_values(mailcanary_dmarc_reports_total{%s, domain=~"$domain"}, reporter)'
                      % VANTAGE, True),
        ],
        items,
    )


DASHBOARDS = {"overview.json": overview, "probe.json": probe, "reports.json": reports}


def render(build):
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv):
    check = argv[1:] == ["--check"]
    if argv[1:] and not check:
        print(__doc__, file=sys.stderr)
        return 2
    stale = []
    for name, build in DASHBOARDS.items():
        path = OUT_DIR / name
        text = render(build)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date, run `python3 grafana/generate.py`: " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
