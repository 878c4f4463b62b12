//! English and French, chosen by the browser's `Accept-Language`.

/// A language of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
}

impl Lang {
    /// The first of English or French the browser asks for (English when
    /// neither).
    pub fn from_accept(header: Option<&str>) -> Self {
        let Some(h) = header else { return Lang::En };
        let mut best = (Lang::En, -1.0f32);
        for part in h.split(',') {
            let mut it = part.trim().split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.parse().ok()))
                .unwrap_or(1.0f32);
            let lang = if tag.starts_with("fr") {
                Some(Lang::Fr)
            } else if tag.starts_with("en") {
                Some(Lang::En)
            } else {
                None
            };
            if let Some(l) = lang
                && q > best.1
            {
                best = (l, q);
            }
        }
        best.0
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// The text of `key` in this language (the key itself when missing).
    pub fn t(self, key: &'static str) -> &'static str {
        let fr = self == Lang::Fr;
        let pick = |en: &'static str, f: &'static str| if fr { f } else { en };
        match key {
            "title" => pick(
                "trawl — case dashboard",
                "trawl — tableau de bord des affaires",
            ),
            "cases" => pick("Cases", "Affaires"),
            "case" => pick("Case", "Affaire"),
            "pool" => pick("Pool", "Parc"),
            "indicators" => pick("Indicators", "Indicateurs"),
            "sign_in" => pick("Sign in", "Connexion"),
            "sign_out" => pick("Sign out", "Déconnexion"),
            "token" => pick("Access token", "Jeton d'accès"),
            "signed_in_as" => pick("Signed in as", "Connecté en tant que"),
            "job" => pick("Job", "Traitement"),
            "jobs" => pick("Jobs", "Traitements"),
            "state" => pick("State", "État"),
            "submitter" => pick("Submitter", "Déposant"),
            "evidence" => pick("Evidence", "Scellé"),
            "progress" => pick("Progress", "Avancement"),
            "throughput" => pick("Throughput", "Débit"),
            "eta" => pick("Time left", "Temps restant"),
            "findings" => pick("Findings", "Résultats"),
            "kind" => pick("Kind", "Type"),
            "count" => pick("Count", "Nombre"),
            "cancel" => pick("Cancel the job", "Annuler le traitement"),
            "download" => pick("Download the report (tar)", "Télécharger le rapport (tar)"),
            "quarantined" => pick("Parts not examined", "Parties non examinées"),
            "none" => pick("None", "Aucune"),
            "reason" => pick("Reason", "Motif"),
            "top_features" => pick("Top features", "Principaux éléments"),
            "yara_hits" => pick("YARA hits", "Détections YARA"),
            "rule" => pick("Rule", "Règle"),
            "family" => pick("Rule family", "Famille de règles"),
            "when_complete" => pick(
                "Shown when the job is complete.",
                "Affiché lorsque le traitement est terminé.",
            ),
            "worker" => pick("Worker", "Nœud"),
            "host" => pick("Host", "Hôte"),
            "slots" => pick("Slots", "Emplacements"),
            "load" => pick("Load", "Charge"),
            "memory" => pick("Memory", "Mémoire"),
            "roots" => pick("Evidence roots", "Racines des scellés"),
            "heartbeat" => pick("Last heartbeat", "Dernier signal"),
            "health" => pick("Health", "Santé"),
            "tasks" => pick("Tasks", "Tâches"),
            "bytes" => pick("Bytes processed", "Octets traités"),
            "month" => pick("Month", "Mois"),
            "images" => pick("Images", "Images"),
            "mean_ttr" => pick("Mean time to result", "Délai moyen de résultat"),
            "export_csv" => pick("Export as CSV", "Exporter en CSV"),
            "forbidden" => pick(
                "Access denied: this job belongs to a case you are not assigned to.",
                "Accès refusé : ce traitement relève d'une affaire qui ne vous est pas attribuée.",
            ),
            "forbidden_title" => pick("403 — Forbidden", "403 — Accès refusé"),
            "unauth_title" => pick("401 — Sign in required", "401 — Connexion requise"),
            "unauth" => pick(
                "Your session is missing or has expired.",
                "Votre session est absente ou a expiré.",
            ),
            "bad_token" => pick(
                "This token was not accepted (unknown, expired or revoked).",
                "Ce jeton n'a pas été accepté (inconnu, expiré ou révoqué).",
            ),
            "not_found" => pick("Not found", "Introuvable"),
            "no_jobs" => pick("No jobs.", "Aucun traitement."),
            "no_workers" => pick("No workers.", "Aucun nœud."),
            _ => key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language() {
        assert_eq!(Lang::from_accept(Some("fr-FR,fr;q=0.9,en;q=0.8")), Lang::Fr);
        assert_eq!(Lang::from_accept(Some("en-GB,fr;q=0.5")), Lang::En);
        assert_eq!(Lang::from_accept(Some("de-DE,fr;q=0.7,en;q=0.3")), Lang::Fr);
        assert_eq!(Lang::from_accept(Some("de")), Lang::En);
        assert_eq!(Lang::from_accept(None), Lang::En);
        assert_eq!(Lang::Fr.t("cases"), "Affaires");
    }
}
