#!/usr/bin/env python3
"""Generate the mailcanary Grafana dashboards into grafana/dashboards/ with the typed builders
of the Grafana Foundation SDK.

    PY=/opt/mailcanary-test-venv/bin/python   # the test virtualenv, where the SDK is installed
    $PY grafana/generate.py           # (re)write the JSON files
    $PY grafana/generate.py --check   # exit 1 if a committed file differs

The SDK is the PyPI package `grafana-foundation-sdk`, pinned in grafana/requirements-generate.txt
to its build for Grafana 11.3 (the image of docker-compose.yml); `sudo scripts/install-test-deps`
installs it into the test virtualenv ($MAILCANARY_TEST_VENV, default /opt/mailcanary-test-venv).
The JSON is committed so that Grafana provisions it as is; tests/lab/dashboards.rs runs `--check`
so that the files never drift from this script, and tests/lab/dashboard_queries.rs holds every
query to the reviewed list in tests/fixtures/monitoring/dashboard_queries.toml.

Adding a panel:
1. Put it at its place in overview(), probe() or reports(): one of the panel functions below
   (timeseries_panel, stat_panel, table_panel, state_timeline_panel, bar_gauge_panel,
   heatmap_panel) with its title, description and query(expr, legend) targets, then the SDK's
   own builder methods for whatever differs from the house defaults, e.g.

       timeseries_panel(
           "Example events",
           "What the reader learns from it, and which alert it feeds.",
           query("sum by (%s) (increase(mailcanary_example_total%s%s))"
                 % (by("route"), sel.r(), RI), "{{route}}"),
           bars=True,
       ).span(8).unit("short"),

   Panels flow left to right and wrap at 24 columns; row("Title") starts a new row.
2. Add the same panel, at the same place, to tests/fixtures/monitoring/dashboard_queries.toml:
   its type, title, minimum interval if any, and each target's expr and legend as the JSON has
   them (a time series' legend ends with " {{vantage}}"). On the overview, the one above is

       [[dashboard.panel]]
       type = "timeseries"
       title = "Example events"
       [[dashboard.panel.target]]
       expr = 'sum by (vantage, route) (increase(mailcanary_example_total{vantage=~"$vantage", route=~"$route"}[$__rate_interval]))'
       legend = "{{route}} {{vantage}}"

   That file is the reviewed list of every query: tests/lab/dashboard_queries.rs fails until
   the dashboards and it agree, so a query changes only as a visible diff of it, never as a
   side effect of a refactor.
3. Run this script, then `cargo nextest run --test lab -E 'test(/dashboard/)'`; the live test
   (tests/lab/live_monitoring.rs) runs every panel's query against a Prometheus scraping a real
   probe and fails on a query that returns no data.

Every panel and query uses the `datasource` template variable, and every rate() or
increase() uses $__rate_interval.

A fleet (one mailcanary per network vantage point, see README "Running at scale") reaches
Prometheus with a `vantage` label that the collecting side adds; the exporter itself has
none. Every query filters on the `vantage` variable (multi-value, "All" = `.*`, which also
matches series without the label) and keeps `vantage` in every aggregation, and every
legend ends with it, so each vantage's series stay apart. Without the label the variable
offers only "All", the legends end in an invisible space, and nothing else changes. Probe
events are sparse (one probe per route and seed per round, 5 minutes by default), so panels
that turn counters into shares or percentiles set a 15-minute minimum interval:
$__rate_interval then spans at least three rounds.
"""
import json
import pathlib
import sys

try:
    # Builders (typed, chainable) and the models they build, by their SDK module names.
    from grafana_foundation_sdk.builders import bargauge
    from grafana_foundation_sdk.builders import common as cb
    from grafana_foundation_sdk.builders import dashboard as db
    from grafana_foundation_sdk.builders import heatmap, prometheus, stat, statetimeline, table
    from grafana_foundation_sdk.builders import timeseries
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common
    from grafana_foundation_sdk.models import dashboard as dm
    from grafana_foundation_sdk.models import heatmap as hm
    from grafana_foundation_sdk.models import prometheus as pm
except ModuleNotFoundError as e:
    sys.exit(
        "grafana/generate.py: %s not found: run it with the test virtualenv's Python "
        "(/opt/mailcanary-test-venv/bin/python, or $MAILCANARY_TEST_VENV/bin/python), where "
        "`sudo scripts/install-test-deps` installs grafana/requirements-generate.txt" % e.name
    )

OUT_DIR = pathlib.Path(__file__).resolve().parent / "dashboards"
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
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


# The counters of judged probes: read back (any folder), missing, unreadable, refused.
OUTCOME_COUNTERS = 'mailcanary_probes_(received|missing|unknown|rejected)_total'


def outcomes(sel, by):
    """Probes judged in the window: read back (any folder), missing, unreadable or refused
    (every class of refusal). One selector over the four counters, not a sum of four: a
    pair's outcome counters appear when first counted (the series budget), and `a + b` is
    empty where `b` has no series."""
    return "sum by (%s) (increase(%s%s))" % (
        by, sel.rs('__name__=~"%s"' % OUTCOME_COUNTERS), RI)


def count_or_zero(metric, sel, by):
    """Increase of a pair's outcome counter, 0 (not no data) for the selected pairs where it has
    no series yet: a pair's outcome counters appear when first counted (the series budget),
    `mailcanary_probes_sent_total` is there for every configured pair."""
    return "sum by (%s) (increase(%s%s%s)) or 0 * sum by (%s) (increase(%s%s%s))" % (
        by, metric, sel.rs(), RI, by, "mailcanary_probes_sent_total", sel.rs(), RI)


def share(sel, numerator_metric, extra, by=by("route", "seed")):
    """The numerator's share of the judged probes; 0 (not no data) where the numerator's
    series does not exist yet."""
    judged = outcomes(sel, by)
    return "(sum by (%s) (increase(%s%s%s)) or 0 * %s)\n/\n%s" % (
        by,
        numerator_metric,
        sel.rs(*extra),
        RI,
        judged,
        judged,
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
# Queries


def _query(expr, legend, fmt):
    return (
        prometheus.Dataquery()
        .datasource(DS)
        .editor_mode(pm.QueryEditorMode.CODE)
        .expr(expr)
        .format(fmt)
        .legend_format(legend)
    )


def query(expr, legend=""):
    """A range query drawn as time series. Its legend ends with the vantage (empty without
    the label), so a fleet's series stay apart."""
    return _query(expr, (legend + " {{vantage}}").lstrip(), pm.PromQueryFormat.TIME_SERIES).range()


def table_query(expr):
    """An instant query shown as a table: one row per series, its labels as columns."""
    return _query(expr, "", pm.PromQueryFormat.TABLE).instant()


def heatmap_query(expr):
    """A range query of histogram buckets, one heatmap row per `le`."""
    return _query(expr, "{{le}}", pm.PromQueryFormat.HEATMAP).range()


# ---------------------------------------------------------------------------------------
# Panels: each function returns the SDK's builder with the house defaults (datasource
# variable, size, legend, tooltip, reduction); chain the builder's own methods for the rest.


def _panel(builder, title, description, queries, w, h):
    builder.title(title).description(description).datasource(DS).span(w).height(h)
    for i, q in enumerate(queries):
        builder.with_target(q.ref_id(chr(ord("A") + i)))
    return builder


def thresholds(*steps):
    """steps: (color, from-value) pairs; the first one is the base (value None)."""
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=value, color=color) for color, value in steps])
    )


def value_map(entries):
    """Value mappings: (value, text, color) entries, in the order Grafana lists them."""
    return [
        dm.ValueMap(
            options={
                str(value): dm.ValueMappingResult(text=text, color=color, index=i)
                for i, (value, text, color) in enumerate(entries)
            }
        )
    ]


PLACEMENT_MAP = value_map(
    [(0, "No probe yet", "text")] + [(c, t, col) for c, _, t, col in PLACEMENT_CODES]
)
PASS_MAP = value_map([(0, "Fail", "red"), (1, "Pass", "green")])
CHECK_MAP = value_map([(0, "Failing", "red"), (1, "OK", "green")])
LISTED_MAP = value_map([(0, "Not listed", "green"), (1, "Listed", "red")])
MET_MAP = value_map([(0, "Unmet", "red"), (1, "Met", "green")])

def last_value():
    """Reduce each series to its last non-null value."""
    return cb.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


def timeseries_panel(title, description, *queries, bars=False, stack=False):
    """12 x 8; lines, or bars (for counts per interval), optionally stacked; legend below, a
    tooltip with every series, largest first."""
    return (
        _panel(timeseries.Panel(), title, description, queries, 12, 8)
        .draw_style(common.GraphDrawStyle.BARS if bars else common.GraphDrawStyle.LINE)
        .fill_opacity(80 if bars else 10)
        .line_width(1)
        .point_size(4)
        .show_points(common.VisibilityMode.NEVER if bars else common.VisibilityMode.AUTO)
        .span_nulls(False)
        .stacking(
            cb.StackingConfig()
            .mode(common.StackingMode.NORMAL if stack else common.StackingMode.NONE)
            .group("A")
        )
        .legend(
            cb.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs([])
        )
        .tooltip(
            cb.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )


def stat_panel(title, description, *queries):
    """6 x 4; the last value of each series on a background of its threshold colour."""
    return (
        _panel(stat.Panel(), title, description, queries, 6, 4)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .justify_mode(common.BigValueJustifyMode.AUTO)
        .orientation(common.VizOrientation.AUTO)
        .reduce_options(last_value())
        .text_mode(common.BigValueTextMode.AUTO)
    )


def state_timeline_panel(title, description, q, mappings):
    """24 x 8; one lane per series, coloured and named by `mappings`, no legend."""
    return (
        _panel(statetimeline.Panel(), title, description, [q], 24, 8)
        .mappings(mappings)
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .thresholds(thresholds(("text", None)))
        .align_value(common.TimelineValueAlignment.LEFT)
        .legend(
            cb.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(False)
        )
        .merge_values(True)
        .row_height(0.9)
        .show_value(common.VisibilityMode.NEVER)
        .tooltip(
            cb.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.SINGLE)
            .sort(common.SortOrder.NONE)
        )
    )


def table_panel(title, description, expr, columns):
    """12 x 8; the instant query's series as rows, showing `columns` (labels, or `Value`) in
    that order and hiding the rest of Prometheus' usual columns."""
    keep = set(columns)
    organize = dm.DataTransformerConfig(
        id_val="organize",
        options={
            "excludeByName": {
                name: True
                for name in ("Time", "Value", "__name__", "job", "instance")
                if name not in keep
            },
            "indexByName": {name: i for i, name in enumerate(columns)},
            "renameByName": {},
        },
    )
    return (
        _panel(table.Panel(), title, description, [table_query(expr)], 12, 8)
        .cell_height(common.TableCellHeight.SM)
        .show_header(True)
        .footer(cb.TableFooterOptions().show(False))
        .with_transformation(organize)
    )


def bar_gauge_panel(title, description, *queries):
    """12 x 8; the last value of each series as a horizontal gradient bar."""
    return (
        _panel(bargauge.Panel(), title, description, queries, 12, 8)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .orientation(common.VizOrientation.HORIZONTAL)
        .reduce_options(last_value())
        .show_unfilled(True)
        .value_mode(common.BarGaugeValueMode.COLOR)
    )


def heatmap_panel(title, description, expr):
    """12 x 8; Prometheus histogram buckets as they are (no recalculation), seconds on the y
    axis, empty buckets (le = 1e-9) hidden; a sparse minimum interval."""
    return (
        _panel(heatmap.Panel(), title, description, [heatmap_query(expr)], 12, 8)
        .interval(SPARSE_INTERVAL)
        .calculate(False)
        .cell_gap(1)
        .color(
            heatmap.HeatmapColorOptions()
            .mode(hm.HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .fill("dark")
            .scale(hm.HeatmapColorScale.EXPONENTIAL)
            .exponent(0.5)
            .steps(64)
            .reverse(False)
        )
        .filter_values(heatmap.FilterValueRange().le(1e-09))
        .show_legend()
        .rows_frame(heatmap.RowsHeatmapOptions().layout(common.HeatmapCellLayout.AUTO))
        .mode(common.TooltipDisplayMode.SINGLE)
        .hide_y_histogram()
        .y_axis(
            heatmap.YAxisConfig()
            .axis_placement(common.AxisPlacement.LEFT)
            .unit("s")
            .reverse(False)
        )
    )


def row(title):
    return db.Row(title)


# ---------------------------------------------------------------------------------------
# What the SDK's models (Grafana 11.3 schema) have no field for. Extended the way the SDK's
# docs extend a panel type: a model subclass that adds its fields to the JSON, and a builder
# subclass that builds it.


class _QueryVariableModel(dm.VariableModel):
    """A query variable with `definition`: the query as Grafana's variable editor shows and
    saves it (and as tests/common/exprs.rs reads it), which the SDK's VariableModel lacks."""

    definition = None

    def to_json(self):
        payload = super().to_json()
        if self.definition is not None:
            payload["definition"] = self.definition
        return payload


class PrometheusQueryVariable(db.QueryVariable):
    """A query variable of the Prometheus datasource."""

    def __init__(self, name):
        super().__init__(name)
        self._internal = _QueryVariableModel(type_val=dm.VariableType.QUERY, name=name)

    def prometheus_query(self, q):
        """`q` (label_values(...)) as the Prometheus variable editor saves it: the query
        object Grafana runs, and the same text as `definition`."""
        self._internal.definition = q
        return self.query({"query": q, "refId": "PrometheusVariableQueryEditor-VariableQuery"})


class _PrometheusAnnotationModel(dm.AnnotationQuery):
    """An annotation query of the Prometheus datasource. The SDK's AnnotationQuery has `expr`
    but not the rest of what the Prometheus annotation editor saves."""

    step = title_format = text_format = tag_keys = use_value_for_time = None

    def to_json(self):
        payload = super().to_json()
        for key, value in (
            ("step", self.step),
            ("titleFormat", self.title_format),
            ("textFormat", self.text_format),
            ("tagKeys", self.tag_keys),
            ("useValueForTime", self.use_value_for_time),
        ):
            if value is not None:
                payload[key] = value
        return payload


class PrometheusAnnotation(db.AnnotationQuery):
    def __init__(self):
        super().__init__()
        self._internal = _PrometheusAnnotationModel()

    def step(self, step):
        """The query's resolution, e.g. "60s"."""
        self._internal.step = step
        return self

    def title_format(self, title_format):
        """Each annotation's title, from the series' labels ({{alertname}})."""
        self._internal.title_format = title_format
        return self

    def text_format(self, text_format):
        """Each annotation's text, from the series' labels."""
        self._internal.text_format = text_format
        return self

    def tag_keys(self, tag_keys):
        """Labels that become the annotation's tags, comma-separated."""
        self._internal.tag_keys = tag_keys
        return self

    def use_value_for_time(self, use_value_for_time):
        """True: the series' value is the annotation's time (else the sample's time)."""
        self._internal.use_value_for_time = use_value_for_time
        return self


# ---------------------------------------------------------------------------------------
# Dashboard assembly


def datasource_var():
    return db.DatasourceVariable("datasource").label("Data source").type("prometheus")


def query_var(name, label, q, multi):
    """A Prometheus label_values() variable, refreshed with the time range and sorted; a
    multi-value one offers "All" as `.*` (which also matches series without the label)."""
    v = (
        PrometheusQueryVariable(name)
        .label(label)
        .datasource(DS)
        .prometheus_query(q)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )
    if multi:
        v.all_value(".*")
    return v


def vantage_var():
    """The vantage points of a fleet (the label the collecting side adds). Multi-value with
    "All" (`.*`): with no `vantage` label anywhere, "All" is the only option and matches
    every series, so a single instance sees no difference."""
    return query_var("vantage", "Vantage", "label_values(mailcanary_probes_sent_total, vantage)", True)


def alerts_annotation():
    """mailcanary's firing alerts as annotations on every time panel."""
    return (
        PrometheusAnnotation()
        .name("mailcanary alerts")
        .datasource(DS)
        .enable(True)
        .hide(False)
        .icon_color("red")
        .expr('ALERTS{alertname=~"Mailcanary.*", alertstate="firing", %s}' % VANTAGE)
        .step("60s")
        .title_format("{{alertname}}")
        .text_format("{{route}} {{seed}} ({{severity}}) {{vantage}}")
        .tag_keys("severity")
        .use_value_for_time(False)
    )


def dashboard(uid, title, description, variables, items):
    """A mailcanary dashboard: tagged, read-only, shared crosshair, the last 24 hours refreshed
    every minute, a link menu to the other mailcanary dashboards, the alert annotations, the
    `datasource` variable then `variables`. `items` (rows and panels) are numbered in order and
    laid out by the SDK: left to right, wrapping at 24 columns, each row on a new line."""
    d = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["mailcanary"])
        .readonly()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .version(1)
        .time("now-24h", "now")
        .timezone("")
        .refresh("1m")
        .fiscal_year_start_month(0)
        .live_now(False)
        .week_start("")
        .link(
            db.DashboardLink("mailcanary dashboards")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags(["mailcanary"])
            .as_dropdown(False)
            .include_vars(True)
            .keep_time(True)
            .icon("external link")
            .target_blank(False)
            .tooltip("")
            .url("")
        )
        .annotation(alerts_annotation())
        .with_variable(datasource_var())
    )
    for v in variables:
        d.with_variable(v)
    for pid, item in enumerate(items, start=1):
        item.id(pid)
        if isinstance(item, db.Row):
            d.with_row(item)
        else:
            d.with_panel(item)
    return d


PROBE_LINK = [
    {
        "title": "Open the probe dashboard for ${__data.fields.route} / ${__data.fields.seed}",
        "url": "/d/mailcanary-probe/mailcanary-probe?var-route=${__data.fields.route}"
        "&var-seed=${__data.fields.seed}&${datasource:queryparam}&${__url_time_range}",
    }
]
# A click on a table's seed opens the probe dashboard of that route and seed.
SEED_LINKS = [dm.DynamicConfigValue(id_val="links", value=PROBE_LINK)]


# ---------------------------------------------------------------------------------------
# Shared panel groups


def auth_panels(sel, by_legend):
    """The authentication results are counted per route (every seed together: the series
    budget); the latest verdict is per route and seed."""
    pass_rate = (
        "sum by (%s) (increase(mailcanary_auth_results_total%s%s))\n/\n"
        "sum by (%s) (increase(mailcanary_auth_results_total%s%s))"
        % (by("method"), sel.r('result="pass"'), RI, by("method"), sel.r(), RI)
    )
    return [
        timeseries_panel(
            "Authentication pass rate by method",
            "Share of the route's probes read back (every seed) whose receiver reported pass, "
            "per method (Authentication-Results, RFC 8601).",
            query(pass_rate, "{{method}}"),
        ).unit("percentunit").min(0).max(1).interval(SPARSE_INTERVAL),
        timeseries_panel(
            "Non-pass authentication results",
            "Results other than pass of the route's probes (every seed), by method and result.",
            query(
                "sum by (%s) (increase(mailcanary_auth_results_total%s%s))"
                % (by("method", "result"), sel.r('result!="pass"'), RI),
                "{{method}} {{result}}",
            ),
            bars=True, stack=True,
        ).unit("short"),
        state_timeline_panel(
            "Latest SPF / DKIM / DMARC verdict",
            "mailcanary_last_auth_pass: 1 if the latest probe got pass for the method.",
            query("mailcanary_last_auth_pass%s" % sel.rs(), by_legend + " {{method}}"),
            PASS_MAP,
        ),
    ]


def latency_panels(sel, labels, legend, pair_legend):
    """The delivery-time distribution is per route (every seed together: the series budget);
    per route and seed, the latest probe's delivery time."""
    metric = "mailcanary_delivery_duration_seconds"
    return [
        timeseries_panel(
            "Delivery latency percentiles",
            "Time from SMTP submission to the probe being visible over IMAP, every seed of the "
            "route.",
            query(quantile("0.5", metric, sel.r(), labels), ("p50 " + legend).strip()),
            query(quantile("0.9", metric, sel.r(), labels), ("p90 " + legend).strip()),
            query(quantile("0.99", metric, sel.r(), labels), ("p99 " + legend).strip()),
        ).span(8).unit("s").interval(SPARSE_INTERVAL),
        heatmap_panel(
            "Delivery latency heatmap",
            "Probes per delivery-time bucket, every seed of the selected routes and every "
            "selected vantage together.",
            "sum by (le) (increase(%s_bucket%s%s))" % (metric, sel.r(), RI),
        ).span(8),
        timeseries_panel(
            "Latest delivery time",
            "Delivery time of the latest probe read back, per route and seed "
            "(MailcanaryDeliverySlow: its 90th percentile over an hour above 5 minutes).",
            query("mailcanary_last_delivery_duration_seconds%s" % sel.rs(), pair_legend),
        ).span(8).unit("s"),
        timeseries_panel(
            "SMTP submission time",
            "Time for the submission server to accept a probe, by route.",
            query(quantile("0.5", "mailcanary_smtp_send_duration_seconds", sel.r(), ["route"]),
                  "p50 {{route}}"),
            query(quantile("0.9", "mailcanary_smtp_send_duration_seconds", sel.r(), ["route"]),
                  "p90 {{route}}"),
        ).unit("s").interval(SPARSE_INTERVAL),
        timeseries_panel(
            "Send failures by reason",
            "Probes the submission server did not accept, by route and fixed reason.",
            query(
                "sum by (%s) (increase(mailcanary_send_failures_total%s%s))"
                % (by("route", "reason"), sel.r(), RI),
                "{{route}} {{reason}}",
            ),
            bars=True, stack=True,
        ).unit("short"),
    ]


def dns_panels(sel):
    return [
        state_timeline_panel(
            "DNS audit checks",
            "mailcanary_dns_check_ok per route and check (ptr, fcrdns, spf, dkim, dmarc, "
            "dnsbl, mx, mta_sts, tls_rpt). mta_sts and tls_rpt are optional and do not alert.",
            query("mailcanary_dns_check_ok%s" % sel.r(), "{{route}} {{check}}"),
            CHECK_MAP,
        ).span(12).height(10),
        state_timeline_panel(
            "DNS blocklist listings",
            "mailcanary_dnsbl_listed: the sending IP of the route on each blocklist zone.",
            query("mailcanary_dnsbl_listed%s" % sel.r(), "{{route}} {{zone}}"),
            LISTED_MAP,
        ).span(12).height(10),
        stat_panel(
            "DKIM key size",
            "Bits of the published DKIM key. RFC 8301 §3.2: under 1024 is ignored, 2048 "
            "is recommended.",
            query("mailcanary_dkim_key_bits%s" % sel.r(), "{{route}}"),
        ).span(12).unit("none")
        .thresholds(thresholds(("red", None), ("orange", 1024), ("green", 2048))),
        stat_panel(
            "SPF DNS lookups",
            "DNS lookups needed to evaluate the SPF record. RFC 7208 §4.6.4: more than 10 is "
            "a permerror.",
            query("mailcanary_spf_dns_lookups%s" % sel.r(), "{{route}}"),
        ).span(12).unit("none")
        .thresholds(thresholds(("green", None), ("orange", 9), ("red", 11))),
    ]


# ---------------------------------------------------------------------------------------
# Dashboards


def overview():
    sel = Sel(multi=True)
    rs = "{{route}} → {{seed}}"
    items = [
        row("Status"),
        stat_panel(
            "Since last completed round",
            "Time since mailcanary finished its last probe round.",
            query("time() - max by (vantage) (mailcanary_last_round_timestamp_seconds%s)"
                  % matchers(VANTAGE)),
        ).unit("s").color_mode(common.BigValueColorMode.NONE),
        stat_panel(
            "Round age in intervals",
            "Time since the last round divided by the configured interval. "
            "MailcanaryProbeStale fires above 2.",
            query(
                "(time() - max by (vantage) (mailcanary_last_round_timestamp_seconds%s))\n"
                "/ max by (vantage) (mailcanary_round_interval_seconds%s)"
                % (matchers(VANTAGE), matchers(VANTAGE)),
            ),
        ).unit("none").decimals(1)
        .thresholds(thresholds(("green", None), ("orange", 1.5), ("red", 2))),
        stat_panel(
            "Exporter up",
            'up{job="mailcanary"} for each scraped instance.',
            query('up%s' % matchers('job="mailcanary"', VANTAGE), "{{instance}}"),
        ).mappings(value_map([(0, "Down", "red"), (1, "Up", "green")])),
        stat_panel(
            "Firing mailcanary alerts",
            "Alerts in state firing, by severity, from every selected vantage together.",
            query('count(ALERTS{alertname=~"Mailcanary.*", alertstate="firing", '
                  'severity="critical", %s}) or vector(0)' % VANTAGE, "critical"),
            query('count(ALERTS{alertname=~"Mailcanary.*", alertstate="firing", '
                  'severity="warning", %s}) or vector(0)' % VANTAGE, "warning"),
        ).thresholds(thresholds(("green", None), ("red", 1))),
        table_panel(
            "Latest placement",
            "Where the latest probe of each route and seed ended up. Click a seed to open "
            "the probe dashboard.",
            "mailcanary_last_placement%s == 1" % sel.rs(),
            ["vantage", "route", "seed", "placement"],
        ).override_by_name("seed", SEED_LINKS),
        bar_gauge_panel(
            "Since last good probe",
            "Time since the probe last landed in the inbox with SPF, DKIM and DMARC pass. "
            "Colours assume the default 5-minute schedule.",
            query("time() - mailcanary_last_success_timestamp_seconds%s" % sel.rs(), rs),
        ).unit("s").thresholds(thresholds(("green", None), ("orange", 900), ("red", 1800))),
        row("Placement"),
        state_timeline_panel(
            "Placement history",
            "Latest placement per route and seed over time.",
            query(placement_code(sel), rs),
            PLACEMENT_MAP,
        ),
        timeseries_panel(
            "Inbox share",
            "Share of judged probes (read back, missing, unreadable or refused) that landed in "
            "the inbox.",
            query(share(sel, "mailcanary_probes_received_total", ['placement="inbox"']), rs),
        ).span(8).unit("percentunit").min(0).max(1).interval(SPARSE_INTERVAL),
        timeseries_panel(
            "Spam share",
            "Share of judged probes that landed in the spam folder.",
            query(share(sel, "mailcanary_probes_received_total", ['placement="spam"']), rs),
        ).span(8).unit("percentunit").min(0).max(1).interval(SPARSE_INTERVAL),
        timeseries_panel(
            "Missing share",
            "Share of judged probes that never arrived before the deadline.",
            query(share(sel, "mailcanary_probes_missing_total", []), rs),
        ).span(8).unit("percentunit").min(0).max(1).interval(SPARSE_INTERVAL),
        timeseries_panel(
            "Probes sent",
            "Probes accepted by the submission server.",
            query(
                "sum by (%s) (increase(mailcanary_probes_sent_total%s%s))"
                % (by("route", "seed"), sel.rs(), RI),
                rs,
            ),
            bars=True, stack=True,
        ).span(8).unit("short"),
        timeseries_panel(
            "Late and unknown probes",
            "Late: arrived after being counted missing. Unknown: the seed mailbox could not "
            "be read.",
            query(count_or_zero("mailcanary_probes_late_total", sel, by("route", "seed")),
                  "late " + rs),
            query(count_or_zero("mailcanary_probes_unknown_total", sel, by("route", "seed")),
                  "unknown " + rs),
            bars=True, stack=True,
        ).span(8).unit("short"),
        timeseries_panel(
            "Spam score",
            "Spam score the receiver gave the latest probe (scale depends on the receiver's "
            "filter).",
            query("mailcanary_spam_score%s" % sel.rs(), rs),
        ).span(8).unit("none"),
        timeseries_panel(
            "Rejected probes by class",
            "Probes the receiving server refused (a bounce came back), by route, seed and kind "
            "of refusal: auth, ptr, blocklist, policy, rate_limit, recipient, other. "
            "MailcanaryProbeRejected fires when the latest probe of a pair stays refused.",
            query(
                "sum by (%s) (increase(mailcanary_probes_rejected_total%s%s))"
                % (by("route", "seed", "class"), sel.rs(), RI),
                rs + " {{class}}",
            ),
            bars=True, stack=True,
        ).span(16).unit("short"),
        timeseries_panel(
            "Bounces read",
            "Bounces and delay notices of the route's probes read from its bounce mailbox. "
            "A delay notice (4.x.x: the probe is deferred, still in flight) shows only here.",
            query(
                "sum by (%s) (increase(mailcanary_bounces_total%s%s))"
                % (by("route"), sel.r(), RI),
                "{{route}}",
            ),
            bars=True, stack=True,
        ).span(8).unit("short"),
        row("Authentication"),
        *auth_panels(sel, rs),
        row("Delivery and sending"),
        *latency_panels(sel, ["route"], "{{route}}", rs),
        row("Seed mailboxes"),
        timeseries_panel(
            "IMAP errors by reason",
            "Errors reading the seed mailboxes, by seed and fixed reason.",
            query(
                "sum by (%s) (increase(mailcanary_imap_errors_total%s%s))"
                % (by("seed", "reason"), sel.s(), RI),
                "{{seed}} {{reason}}",
            ),
            bars=True, stack=True,
        ).unit("short"),
        timeseries_panel(
            "Forged probes",
            "Mail carrying a probe tag whose signature does not verify.",
            query(
                "sum by (%s) (increase(mailcanary_forged_probes_total%s%s))"
                % (by("seed"), sel.s(), RI),
                "{{seed}}",
            ),
            bars=True,
        ).unit("short"),
        row("DNS audit and diagnosis"),
        *dns_panels(sel),
        state_timeline_panel(
            "Sender requirements per provider",
            "mailcanary_requirement_met per route, provider and requirement: what Gmail, Yahoo "
            "and Microsoft require of senders (data/sender-requirements.toml), scored from the "
            "route's newest probe as the receiver saw it. Unmet for 30 minutes raises "
            "MailcanaryRequirementUnmet; /api/requirements says why and how to fix it.",
            query("mailcanary_requirement_met%s" % sel.r(), "{{route}} {{provider}} {{requirement}}"),
            MET_MAP,
        ).span(24).height(10),
        table_panel(
            "Current diagnosis",
            "The diagnosed cause for each failing probe (mailcanary_diagnosis == 1).",
            "mailcanary_diagnosis%s == 1" % sel.rs(),
            ["vantage", "route", "seed", "cause"],
        ).override_by_name("seed", SEED_LINKS),
        timeseries_panel(
            "Diagnosed causes over time",
            "Number of route and seed pairs with each diagnosed cause.",
            query("count by (%s) (mailcanary_diagnosis%s == 1)" % (by("cause"), sel.rs()),
                  "{{cause}}"),
            bars=True, stack=True,
        ).unit("short"),
        row("Exporter"),
        stat_panel(
            "Version",
            "mailcanary_build_info.",
            query("mailcanary_build_info%s" % matchers(VANTAGE), "{{version}}"),
        ).span(8).text_mode(common.BigValueTextMode.NAME).color_mode(common.BigValueColorMode.NONE),
        timeseries_panel(
            "Resident memory",
            "process_resident_memory_bytes of mailcanary.",
            query('process_resident_memory_bytes%s' % matchers('job="mailcanary"', VANTAGE),
                  "{{instance}}"),
        ).span(8).unit("bytes"),
        timeseries_panel(
            "CPU",
            "CPU seconds per second used by mailcanary.",
            query('rate(process_cpu_seconds_total%s%s)' % (matchers('job="mailcanary"', VANTAGE), RI),
                  "{{instance}}"),
        ).span(8).unit("percentunit"),
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
        stat_panel(
            "Latest placement",
            "Where the latest probe ended up.",
            query(placement_code(sel)),
        ).mappings(PLACEMENT_MAP).thresholds(thresholds(("text", None))),
        stat_panel(
            "Since last good probe",
            "Time since the probe last landed in the inbox with SPF, DKIM and DMARC pass.",
            query("time() - mailcanary_last_success_timestamp_seconds%s" % sel.rs()),
        ).unit("s").color_mode(common.BigValueColorMode.NONE),
        stat_panel(
            "Latest SPF / DKIM / DMARC",
            "mailcanary_last_auth_pass of the latest probe.",
            query("mailcanary_last_auth_pass%s" % sel.rs(), "{{method}}"),
        ).mappings(PASS_MAP),
        stat_panel(
            "Spam score",
            "Spam score the receiver gave the latest probe.",
            query("mailcanary_spam_score%s" % sel.rs()),
        ).color_mode(common.BigValueColorMode.NONE),
        table_panel(
            "Current diagnosis",
            "The diagnosed cause if the latest probe failed (mailcanary_diagnosis == 1). "
            "Run `mailcanary check-dns` and `mailcanary inspect` as in docs/runbook.md.",
            "mailcanary_diagnosis%s == 1" % sel.rs(),
            ["vantage", "cause"],
        ).span(24).height(4),
        row("History"),
        state_timeline_panel(
            "Placement history",
            "Latest placement over time.",
            query(placement_code(sel), "placement"),
            PLACEMENT_MAP,
        ).height(4),
        timeseries_panel(
            "Probe outcomes",
            "Probes read back by folder, missing, late, unreadable, and refused by the "
            "receiving server by kind of refusal.",
            query("sum by (%s) (increase(mailcanary_probes_received_total%s%s))"
                  % (by("placement"), sel.rs(), RI), "{{placement}}"),
            query(count_or_zero("mailcanary_probes_missing_total", sel, by()), "missing"),
            query(count_or_zero("mailcanary_probes_late_total", sel, by()), "late"),
            query(count_or_zero("mailcanary_probes_unknown_total", sel, by()), "unknown"),
            query("sum by (%s) (increase(mailcanary_probes_rejected_total%s%s))"
                  % (by("class"), sel.rs(), RI), "rejected {{class}}"),
            bars=True, stack=True,
        ).unit("short"),
        timeseries_panel(
            "Spam score",
            "Spam score of the latest probe over time.",
            query("mailcanary_spam_score%s" % sel.rs(), "score"),
        ).unit("none"),
        timeseries_panel(
            "Bounces read for the route",
            "Bounces and delay notices of this route's probes (every seed) read from its bounce "
            "mailbox. A delay notice (4.x.x: the probe is deferred, still in flight) shows only "
            "here.",
            query("sum by (%s) (increase(mailcanary_bounces_total%s%s))" % (by(), sel.r(), RI),
                  "bounces"),
            bars=True,
        ).span(24).height(6).unit("short"),
        row("Authentication"),
        *auth_panels(sel, "latest"),
        row("Delivery and sending"),
        *latency_panels(sel, [], "", "latest"),
        row("Seed mailbox"),
        timeseries_panel(
            "IMAP errors by reason",
            "Errors reading this seed's mailbox.",
            query(
                "sum by (%s) (increase(mailcanary_imap_errors_total%s%s))"
                % (by("reason"), sel.s(), RI),
                "{{reason}}",
            ),
            bars=True, stack=True,
        ).unit("short"),
        timeseries_panel(
            "Forged probes",
            "Mail in this seed carrying a probe tag whose signature does not verify.",
            query("sum by (%s) (increase(mailcanary_forged_probes_total%s%s))" % (by(), sel.s(), RI),
                  "forged"),
            bars=True,
        ).unit("short"),
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
        timeseries_panel(
            "DMARC pass share per reporter",
            "Share of the messages each receiver reported for the domain that passed DMARC "
            "(aligned DKIM or aligned SPF), over a reporting day. Below 1: someone sends as the "
            "domain without authentication — see the failing sources on the status page or "
            "/api/reports.",
            query(
                "1 - (\n  sum by (%s) (%s)\n  /\n  sum by (%s) (%s)\n)"
                % (by("domain", "reporter"), day(msgs, 'dkim="fail"', 'spf="fail"'),
                   by("domain", "reporter"), day(msgs)),
                "{{domain}} {{reporter}}",
            ),
        ).unit("percentunit").min(0).max(1).interval(REPORT_INTERVAL),
        timeseries_panel(
            "Messages reported per reporter",
            "Messages claiming the domain that each receiver counted, per reporting day.",
            query("sum by (%s) (%s)" % (by("domain", "reporter"), day(msgs)),
                  "{{domain}} {{reporter}}"),
        ).unit("short").interval(REPORT_INTERVAL),
        timeseries_panel(
            "Aligned DKIM and SPF",
            "Messages with aligned DKIM and with aligned SPF (policy-evaluated), per reporting "
            "day. DKIM survives forwarding; SPF does not.",
            query("sum by (%s) (%s)" % (by("domain"), day(msgs, 'dkim="pass"')), "{{domain}} dkim aligned"),
            query("sum by (%s) (%s)" % (by("domain"), day(msgs, 'spf="pass"')), "{{domain}} spf aligned"),
        ).unit("short").interval(REPORT_INTERVAL),
        timeseries_panel(
            "Disposition applied",
            "What the receivers did with the messages: none (delivered), quarantine (spam), "
            "reject.",
            query("sum by (%s) (%s)" % (by("domain", "disposition"), day(msgs)),
                  "{{domain}} {{disposition}}"),
            bars=True, stack=True,
        ).unit("short").interval(REPORT_INTERVAL),
        table_panel(
            "Newest report per reporter",
            "Seconds since the end of the period the newest DMARC report of each reporter "
            "covers. More than three days for a major reporter raises "
            "MailcanaryDMARCReportsStopped.",
            "time() - mailcanary_dmarc_last_report_timestamp_seconds%s" % matchers(dr),
            ["vantage", "domain", "reporter", "Value"],
        ),
        row("SMTP TLS reports (RFC 8460)"),
        timeseries_panel(
            "TLS sessions to the MX",
            "Successful and failed SMTP TLS sessions to the domain's MX that sending servers "
            "reported, per reporting day.",
            query(
                "sum by (%s) (increase(mailcanary_tls_sessions_total%s%s))"
                % (by("domain", "result"), matchers(dr), RI),
                "{{domain}} {{result}}",
            ),
            bars=True, stack=True,
        ).unit("short").interval(REPORT_INTERVAL),
        timeseries_panel(
            "TLS failures by type",
            "Failed sessions by RFC 8460 result type (certificate-expired, "
            "starttls-not-supported, sts-policy-fetch-error, ...).",
            query(
                "sum by (%s) (increase(mailcanary_tls_failures_total%s%s))"
                % (by("domain", "result_type"), matchers(dr), RI),
                "{{domain}} {{result_type}}",
            ),
            bars=True, stack=True,
        ).unit("short").interval(REPORT_INTERVAL),
        row("Complaints (ARF feedback loops, RFC 5965)"),
        timeseries_panel(
            "Complaints per reporter",
            "Complaints (abuse, fraud, ...) the receivers' feedback loops sent about mail "
            "claiming the domain, by feedback type, per reporting day. Any complaint raises "
            "MailcanaryComplaintsReceived; the complained-about messages are in /api/reports.",
            query(
                "sum by (%s) (increase(mailcanary_complaints_total%s%s))"
                % (by("domain", "reporter", "type"), matchers(dr), RI),
                "{{domain}} {{reporter}} {{type}}",
            ),
            bars=True, stack=True,
        ).unit("short").interval(REPORT_INTERVAL),
        row("Report mailboxes"),
        timeseries_panel(
            "Unreadable reports",
            "Mails in a report mailbox that looked like a report and could not be read, by "
            "reason (they stay in the mailbox; `mailcanary inspect` says why).",
            query(
                "sum by (%s) (increase(mailcanary_report_errors_total%s%s))"
                % (by("mailbox", "reason"), matchers(VANTAGE), RI),
                "{{mailbox}} {{reason}}",
            ),
            bars=True,
        ).unit("short").interval(SPARSE_INTERVAL),
        stat_panel(
            "Since last read",
            "Time since each report mailbox was last read completely (the top failing source "
            "IPs with their reverse names are on the status page and at /api/reports).",
            query("time() - mailcanary_report_mailbox_last_read_timestamp_seconds%s"
                  % matchers(VANTAGE), "{{mailbox}}"),
        ).span(12).unit("s").color_mode(common.BigValueColorMode.NONE),
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
    """The dashboard as the SDK encodes it: keys sorted, so that a newer SDK that orders its
    fields differently changes no file."""
    text = json.dumps(build().build(), cls=JSONEncoder, indent=2, sort_keys=True,
                      ensure_ascii=False)
    return text + "\n"


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
        print("out of date, run `python grafana/generate.py` (the test virtualenv's): "
              + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
