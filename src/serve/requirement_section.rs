//! The status page's sender-requirement table: each route (rows) × provider (columns) of the
//! table `data/sender-requirements.toml`, scored live from the route's newest found probe
//! (`results::scorecard`). A cell says "met" when every observable requirement is, names the
//! unmet ones (with the fix in its title), or says nothing was observed yet; what a probe cannot
//! observe is counted under the table, never shown as met.

use crate::requirements::ScoreStatus;
use crate::results::scorecard::{ProviderScores, RouteRequirements};
use crate::serve::html::esc;

/// The section; empty when no route is configured.
pub fn render(routes: &[RouteRequirements]) -> String {
    let Some(first) = routes.first() else {
        return String::new();
    };
    let mut html = String::from(
        "<section><h2>Sender requirements per provider</h2><div class=\"wrap\"><table>\
<thead><tr><th>route</th>",
    );
    for provider in &first.providers {
        html.push_str(&format!("<th>{}</th>", esc(&provider.name)));
    }
    html.push_str("</tr></thead><tbody>");
    for route in routes {
        let bulk = if route.bulk { " (bulk)" } else { "" };
        html.push_str(&format!("<tr><th>{}{bulk}</th>", esc(&route.route)));
        for provider in &route.providers {
            html.push_str(&cell(route, provider));
        }
        html.push_str("</tr>");
    }
    let not_observable: Vec<&str> = first
        .providers
        .iter()
        .flat_map(|p| &p.scores)
        .filter(|s| s.status == ScoreStatus::NotObservable)
        .map(|s| s.requirement.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    html.push_str("</tbody></table></div>");
    if !not_observable.is_empty() {
        html.push_str(&format!(
            "<p>Not observable by a probe (listed, never guessed): {}. \
<a href=\"/api/requirements\">/api/requirements</a></p>",
            esc(&not_observable.join(", "))
        ));
    }
    html.push_str("</section>");
    html
}

/// One route × provider cell.
fn cell(route: &RouteRequirements, provider: &ProviderScores) -> String {
    if route.probe_sent_at.is_none() {
        return "<td class=\"pending\">no probe found yet</td>".to_string();
    }
    let count = |status| {
        provider
            .scores
            .iter()
            .filter(|s| s.status == status)
            .count()
    };
    let unmet: Vec<String> = provider
        .scores
        .iter()
        .filter(|s| s.status == ScoreStatus::Unmet)
        .map(|s| {
            format!(
                "<div class=\"cause\" title=\"{}\">{}</div>",
                esc(s.fix.as_deref().unwrap_or(&s.detail)),
                esc(s.requirement.as_str())
            )
        })
        .collect();
    let (met, unknown) = (count(ScoreStatus::Met), count(ScoreStatus::Unknown));
    let facts = if unknown > 0 {
        format!("{met} met, {unknown} unknown")
    } else {
        format!("{met} met")
    };
    let class = if unmet.is_empty() { "ok" } else { "warning" };
    format!(
        "<td class=\"{class}\" data-route=\"{}\" data-provider=\"{}\"><div class=\"facts\">{}</div>{}</td>",
        esc(&route.route),
        esc(&provider.provider),
        esc(&facts),
        unmet.concat()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requirements::{AppliesTo, Level, RequirementId, Score};

    fn score(requirement: RequirementId, status: ScoreStatus) -> Score {
        Score {
            provider: "gmail".into(),
            requirement,
            applies_to: AppliesTo::All,
            level: Level::Required,
            status,
            detail: "d".into(),
            cause: None,
            fix: Some("Publish a PTR <record>".into()),
            source: "https://support.google.com/a/answer/81126".into(),
        }
    }

    #[test]
    fn unmet_requirements_are_named_escaped_and_unobservable_ones_listed() {
        let routes = [RouteRequirements {
            route: "news<1>".into(),
            bulk: true,
            probe_sent_at: Some(1.0),
            seed: Some("s1".into()),
            providers: vec![ProviderScores {
                provider: "gmail".into(),
                name: "Gmail".into(),
                scores: vec![
                    score(RequirementId::SpfOrDkim, ScoreStatus::Met),
                    score(RequirementId::PtrFcrdns, ScoreStatus::Unmet),
                    score(RequirementId::ComplaintRate, ScoreStatus::NotObservable),
                ],
            }],
        }];
        let html = render(&routes);
        assert!(html.contains("<th>Gmail</th>"), "{html}");
        assert!(html.contains("<th>news&lt;1&gt; (bulk)</th>"), "{html}");
        assert!(html.contains("class=\"warning\""), "{html}");
        assert!(
            html.contains("title=\"Publish a PTR &lt;record&gt;\">ptr_fcrdns</div>"),
            "{html}"
        );
        assert!(html.contains("1 met"), "{html}");
        assert!(
            html.contains("listed, never guessed): complaint_rate."),
            "{html}"
        );
        assert_eq!(render(&[]), "");
    }
}
