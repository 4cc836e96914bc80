"""The portal's languages (SPEC 7: English and French at least): a message catalogue keyed by
the English text, the language chosen from a cookie the switch sets, else the browser's
Accept-Language, else English.

A plain, typed dictionary rather than gettext .po/.mo files: the portal has about a hundred
strings, Python reads this module as it is (no compile step to forget, nothing to ship but the
module) and tests/node/portal/test_i18n.py checks that every string a template or handler uses
has a French entry with the same placeholders (docs/portal.md, "Languages")."""

from __future__ import annotations

from collections.abc import Callable

ENGLISH = "en"
FRENCH = "fr"
LANGUAGES = {ENGLISH: "English", FRENCH: "Français"}

#: English text -> French text. Placeholders in braces are kept as they are.
FR: dict[str, str] = {
    # the frame
    "Authority portal": "Portail de l'autorité",
    "Kimberley Process certificates": "Certificats du Processus de Kimberley",
    "Skip to content": "Aller au contenu",
    "Main menu": "Menu principal",
    "Language": "Langue",
    "Inbox": "Boîte de réception",
    "Issue certificate": "Émettre un certificat",
    "Search": "Rechercher",
    "Statistics": "Statistiques",
    "Activity log": "Journal d'activité",
    "Sign out": "Se déconnecter",
    "Signed in as {name} ({role})": "Connecté en tant que {name} ({role})",
    "issuer": "émetteur",
    "confirmer": "confirmateur",
    "auditor": "auditeur",
    "admin": "administrateur",
    # sign-in
    "Sign in": "Se connecter",
    "Username": "Nom d'utilisateur",
    "Password": "Mot de passe",
    "Wrong username or password.": "Nom d'utilisateur ou mot de passe incorrect.",
    "This account is locked after too many failed sign-ins. Try again after {time}.": (
        "Ce compte est verrouillé après trop d'échecs de connexion. Réessayez après {time}."
    ),
    "This account is disabled. Ask your administrator.": (
        "Ce compte est désactivé. Adressez-vous à votre administrateur."
    ),
    "Your session has ended. Please sign in again.": (
        "Votre session a pris fin. Veuillez vous reconnecter."
    ),
    "You have signed out.": "Vous êtes déconnecté.",
    # the inbox
    "Incoming certificates awaiting our decision": (
        "Certificats entrants en attente de notre décision"
    ),
    "Outgoing certificates awaiting the importer": (
        "Certificats sortants en attente de l'importateur"
    ),
    "Nothing is waiting.": "Rien en attente.",
    "Certificate number": "Numéro de certificat",
    "From": "De",
    "To": "À",
    "Date of issue": "Date d'émission",
    "Date of expiry": "Date d'expiration",
    "Days left": "Jours restants",
    "{n} days left": "{n} jours restants",
    "1 day left": "1 jour restant",
    "expires today": "expire aujourd'hui",
    "expired": "expiré",
    "Status": "Statut",
    # the issue form
    "Importing participant": "Participant importateur",
    "Country of origin": "Pays d'origine",
    "HS code": "Code SH",
    "Carat weight": "Poids en carats",
    "Value (USD)": "Valeur (USD)",
    "Number of parcels": "Nombre de colis",
    "Exporter name": "Nom de l'exportateur",
    "Exporter address": "Adresse de l'exportateur",
    "Importer name": "Nom de l'importateur",
    "Importer address": "Adresse de l'importateur",
    "Choose…": "Choisir…",
    "ISO country codes separated by commas, or MIXED": (
        "Codes pays ISO séparés par des virgules, ou MIXED"
    ),
    "For example {example}": "Par exemple {example}",
    "At most two decimal places": "Au plus deux décimales",
    "The ledger refused this certificate; nothing was recorded.": (
        "Le registre a refusé ce certificat ; rien n'a été enregistré."
    ),
    "Issued by {authority}: signed with its authority key when you press the button.": (
        "Émis par {authority} : signé avec sa clé d'autorité lorsque vous appuyez sur le bouton."
    ),
    "unsorted": "non triés",
    "industrial, unworked": "industriels, bruts",
    "non-industrial, unworked": "non industriels, bruts",
    # the certificate page
    "Certificate {number}": "Certificat {number}",
    "Exporting participant": "Participant exportateur",
    "Exporter": "Exportateur",
    "Importer": "Importateur",
    "History": "Historique",
    "Event": "Événement",
    "Time": "Heure",
    "Block": "Bloc",
    "Event id": "Identifiant de l'événement",
    "Download PDF": "Télécharger le PDF",
    "Confirm receipt": "Confirmer la réception",
    "Reject": "Rejeter",
    "Void": "Annuler",
    "Reason": "Motif",
    "Why the shipment is rejected": "Pourquoi l'envoi est rejeté",
    "issued": "émis",
    "import_confirmed": "importation confirmée",
    "import_rejected": "importation rejetée",
    "voided": "annulé",
    "certificate.issue": "émission",
    "certificate.confirm_import": "confirmation de l'importation",
    "certificate.reject_import": "rejet de l'importation",
    "certificate.void": "annulation",
    "certificate.endorse": "visa de l'équipe de suivi",
    "certificate.historical": "reprise des archives de l'autorité (certificat historique)",
    "historical record": "certificat historique",
    "Historical record: a certificate from before this network, entered from its authority's archive in the status it ended with. No event follows it.": (
        "Certificat historique : antérieur à ce réseau, repris des archives de son autorité dans "
        "l'état où il s'est terminé. Aucun événement ne le suit."
    ),
    "The certificate is recorded on the ledger.": "Le certificat est inscrit au registre.",
    "Receipt confirmed on the ledger.": "Réception confirmée au registre.",
    "Import rejected on the ledger.": "Importation rejetée au registre.",
    "Certificate voided on the ledger.": "Certificat annulé au registre.",
    "Sent to the network; not yet in a final block. Event {event_id}.": (
        "Transmis au réseau ; pas encore dans un bloc final. Événement {event_id}."
    ),
    "The ledger refused: {message}": "Le registre a refusé : {message}",
    "Exporter and importer are readable only on the parties' nodes.": (
        "L'exportateur et l'importateur ne sont lisibles que sur les nœuds des parties."
    ),
    # search
    "Partner": "Partenaire",
    "Any": "Tous",
    "Issued from": "Émis à partir du",
    "Issued until": "Émis jusqu'au",
    "No certificate matches.": "Aucun certificat ne correspond.",
    "Direction": "Sens",
    "export": "exportation",
    "import": "importation",
    # statistics
    "Year": "Année",
    "Quarter": "Trimestre",
    "Whole year": "Année entière",
    "Show": "Afficher",
    "Download CSV": "Télécharger le CSV",
    "Role": "Rôle",
    "Certificates": "Certificats",
    "Carats": "Carats",
    "exporter": "exportateur",
    "importer": "importateur",
    "Live figures of {participant} at height {height}.": (
        "Chiffres en direct de {participant} à la hauteur {height}."
    ),
    "No trade in this period.": "Aucun échange sur cette période.",
    # activity
    "Officer": "Agent",
    "Action": "Action",
    "Certificate": "Certificat",
    "Outcome": "Résultat",
    "Detail": "Détail",
    "Nothing recorded yet.": "Rien d'enregistré pour l'instant.",
    # refusals
    "Not allowed": "Non autorisé",
    "Your role ({role}) does not allow this.": "Votre rôle ({role}) ne le permet pas.",
    "This form has expired or did not come from this portal. Open the page again and retry.": (
        "Ce formulaire a expiré ou ne vient pas de ce portail. Rouvrez la page et réessayez."
    ),
    "Not found": "Introuvable",
    "{number} is not a certificate of {participant}.": (
        "{number} n'est pas un certificat de {participant}."
    ),
    "Back to the inbox": "Retour à la boîte de réception",
    "This action is not possible in the certificate's present state.": (
        "Cette action n'est pas possible dans l'état actuel du certificat."
    ),
}

# The void reasons (ledger/events.py VOID_REASONS), in their order.
FR.update(
    zip(
        ("lost", "stolen", "error", "replaced"),
        ("perdu", "volé", "erreur", "remplacé"),
        strict=True,
    )
)

#: English words for the ledger's machine names where a person reads them (statuses, event types).
EN: dict[str, str] = {
    "import_confirmed": "import confirmed",
    "import_rejected": "import rejected",
    "certificate.issue": "issue",
    "certificate.confirm_import": "import confirmed",
    "certificate.reject_import": "import rejected",
    "certificate.void": "void",
    "certificate.endorse": "endorsed by the monitoring team",
    "certificate.historical": "entered from the authority's archive (historical record)",
}

CATALOGUES: dict[str, dict[str, str]] = {ENGLISH: EN, FRENCH: FR}

Translate = Callable[..., str]


def translator(language: str) -> Translate:
    """`t(text, **values)`: the text in `language` (English when it has none), formatted."""
    catalogue = CATALOGUES.get(language, {})

    def t(text: str, **values: object) -> str:
        out = catalogue.get(text, text)
        return out.format(**values) if values else out

    return t


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The switch's cookie, else the first language of Accept-Language we have, else English."""
    if cookie in CATALOGUES:
        return str(cookie)
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in CATALOGUES and quality > 0:
            ranked.append((-quality, position, primary))
    return sorted(ranked)[0][2] if ranked else ENGLISH
