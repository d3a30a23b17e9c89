"""The portal's words in English, French and German (SPEC §8: the products'
own markets). The English text is the key; FR and DE give the translation.
A missing translation falls back to English, and a test checks there is none.

The French follows seed 000's portal ("Règles sortantes", "Numéros autorisés",
"Activé", "Valider") and the German seed 001's ("Durchwahlen",
"Anrufeinstellungen", "IVR-Authentifizierung", "Entsperrcode")."""

from __future__ import annotations

LANGUAGES = ("en", "fr", "de")

_T: dict[str, tuple[str, str]] = {
    # navigation
    "Outbound rules": ("Règles sortantes", "Ausgehende Regeln"),
    "Authorized numbers": ("Numéros autorisés", "Autorisierte Nummern"),
    "Lists": ("Listes", "Listen"),
    "Rules": ("Règles", "Regeln"),
    "Extensions": ("Extensions", "Durchwahlen"),
    "Call settings": ("Paramètres d'appel", "Anrufeinstellungen"),
    "Check a call": ("Tester un appel", "Anruf prüfen"),
    "Audit": ("Journal", "Protokoll"),
    "Calls in progress": ("Appels en cours", "Laufende Anrufe"),
    "Tenant settings": ("Paramètres du client", "Kundeneinstellungen"),
    "Tenants": ("Clients", "Kunden"),
    "My account": ("Mon compte", "Mein Konto"),
    "Sign out": ("Se déconnecter", "Abmelden"),
    "Sign in": ("Se connecter", "Anmelden"),
    "User name": ("Nom d'utilisateur", "Benutzername"),
    "Password": ("Mot de passe", "Passwort"),
    "Language": ("Langue", "Sprache"),
    "Service provider": ("Fournisseur de service", "Dienstanbieter"),
    "Administrator of": ("Administrateur de", "Administrator von"),
    # authorized numbers (seed 000)
    "Add an authorized number": ("Ajouter un Numéro autorisé", "Autorisierte Nummer hinzufügen"),
    "First name": ("Prénom", "Vorname"),
    "Last name": ("Nom", "Nachname"),
    "Phone": ("Téléphone", "Telefon"),
    "State": ("État", "Status"),
    "List": ("Liste", "Liste"),
    "Enabled": ("Activé", "Aktiviert"),
    "Disabled": ("Désactivé", "Deaktiviert"),
    "Validate": ("Valider", "Speichern"),
    "Search": ("Rechercher", "Suchen"),
    "All lists": ("Toutes les listes", "Alle Listen"),
    "Last used": ("Dernière utilisation", "Zuletzt genutzt"),
    "never": ("jamais", "nie"),
    "Enable": ("Activer", "Aktivieren"),
    "Disable": ("Désactiver", "Deaktivieren"),
    "Remove": ("Supprimer", "Entfernen"),
    "Import CSV": ("Importer un CSV", "CSV importieren"),
    "Export CSV": ("Exporter en CSV", "Als CSV exportieren"),
    "Update entries that already exist": ("Mettre à jour les entrées existantes",
                                          "Vorhandene Einträge aktualisieren"),
    "Create the lists named in the file": ("Créer les listes nommées dans le fichier",
                                           "In der Datei genannte Listen anlegen"),
    "Import": ("Importer", "Importieren"),
    "Not used for 90 days": ("Inutilisés depuis 90 jours", "Seit 90 Tagen ungenutzt"),
    "Expired or ending within 14 days": ("Expirés ou expirant sous 14 jours",
                                         "Abgelaufen oder in 14 Tagen ablaufend"),
    "Valid": ("Validité", "Gültigkeit"),
    "Valid from": ("Valide à partir du", "Gültig ab"),
    "Valid until": ("Valide jusqu'au", "Gültig bis"),
    "from": ("du", "ab"),
    "until": ("jusqu'au", "bis"),
    "No entries.": ("Aucune entrée.", "Keine Einträge."),
    "entries": ("entrées", "Einträge"),
    "Actions": ("Actions", "Aktionen"),
    "Only people enabled on a rule's lists may call through it.": (
        "Seules les personnes activées sur les listes d'une règle peuvent appeler par elle.",
        "Nur Personen, die auf den Listen einer Regel aktiviert sind, dürfen über sie anrufen."),
    # lists and rules
    "Create a list": ("Créer une liste", "Liste anlegen"),
    "Name": ("Nom", "Name"),
    "Create": ("Créer", "Anlegen"),
    "Also remove its entries": ("Supprimer aussi ses entrées", "Auch ihre Einträge entfernen"),
    "Action": ("Action", "Aktion"),
    "Classes": ("Classes", "Klassen"),
    "Prefixes": ("Préfixes", "Präfixe"),
    "PIN": ("PIN", "PIN"),
    "Holds": ("S'applique", "Gilt"),
    "always": ("toujours", "immer"),
    "Add a rule": ("Ajouter une règle", "Regel hinzufügen"),
    "Position": ("Position", "Position"),
    "Up": ("Monter", "Nach oben"),
    "Down": ("Descendre", "Nach unten"),
    "allow": ("autoriser", "erlauben"),
    "deny": ("refuser", "sperren"),
    "yes": ("oui", "ja"),
    "no": ("non", "nein"),
    "Days": ("Jours", "Tage"),
    "Hours": ("Heures", "Uhrzeiten"),
    "Holidays": ("Jours fériés", "Feiertage"),
    "Regions": ("Régions", "Regionen"),
    "Except regions": ("Sauf les régions", "Außer den Regionen"),
    "except": ("sauf", "außer"),
    "Ask for a PIN": ("Demander un PIN", "PIN abfragen"),
    "Also forwarded and transferred calls": ("Aussi les appels renvoyés et transférés",
                                             "Auch weitergeleitete und vermittelte Anrufe"),
    "Rules are tried in order; the first enabled rule that matches decides.": (
        "Les règles sont essayées dans l'ordre ; la première règle active qui correspond décide.",
        "Die Regeln werden der Reihe nach geprüft; die erste passende aktive Regel entscheidet."),
    "No rule matches: the tenant's default action applies": (
        "Aucune règle ne correspond : l'action par défaut du client s'applique",
        "Keine Regel passt: die Standardaktion des Kunden gilt"),
    "Edit": ("Modifier", "Bearbeiten"),
    "Save": ("Enregistrer", "Speichern"),
    # extensions (seed 001)
    "Extension": ("Extension", "Durchwahl"),
    "IVR authentication": ("Authentification IVR", "IVR-Authentifizierung"),
    "on": ("activée", "aktiv"),
    "off": ("désactivée", "inaktiv"),
    "Unlock codes": ("Codes de déverrouillage", "Entsperrcodes"),
    "Holder": ("Titulaire", "Inhaber"),
    "Set a PIN": ("Définir un PIN", "PIN festlegen"),
    "PIN (digits)": ("PIN (chiffres)", "PIN (Ziffern)"),
    "Repeat the PIN": ("Répéter le PIN", "PIN wiederholen"),
    "Add an extension": ("Ajouter une extension", "Durchwahl hinzufügen"),
    "Number": ("Numéro", "Nummer"),
    "Who uses it": ("Utilisateur", "Wer sie nutzt"),
    "Caller IDs": ("Numéros présentés", "Rufnummern"),
    "Locked": ("Verrouillée", "Gesperrt"),
    "Unlock": ("Déverrouiller", "Entsperren"),
    "not locked": ("non verrouillée", "nicht gesperrt"),
    "Tenant language": ("Langue du client", "Sprache des Kunden"),
    "The PIN feature is off for this company: the service provider switches it on.": (
        "La fonction PIN est désactivée pour cette entreprise : le fournisseur de service l'active.",
        "Die PIN-Funktion ist für dieses Unternehmen aus: der Dienstanbieter schaltet sie ein."),
    "With IVR authentication on, every chargeable call asks for one of these codes.": (
        "Avec l'authentification IVR, chaque appel payant demande l'un de ces codes.",
        "Mit IVR-Authentifizierung fragt jeder kostenpflichtige Anruf nach einem dieser Codes."),
    "No PIN yet.": ("Pas encore de PIN.", "Noch keine PIN."),
    "Switch on": ("Activer", "Einschalten"),
    "Switch off": ("Désactiver", "Ausschalten"),
    "Back": ("Retour", "Zurück"),
    # check
    "From extension": ("Depuis l'extension", "Von Durchwahl"),
    "Number dialed": ("Numéro composé", "Gewählte Nummer"),
    "Presented caller ID": ("Numéro présenté", "Angezeigte Rufnummer"),
    "Source (trunk)": ("Source (trunk)", "Quelle (Trunk)"),
    "Check": ("Tester", "Prüfen"),
    "Verdict": ("Verdict", "Entscheidung"),
    "Class": ("Classe", "Klasse"),
    "Reason": ("Raison", "Grund"),
    "Why": ("Pourquoi", "Warum"),
    "Identity": ("Identité", "Identität"),
    "Rule": ("Règle", "Regel"),
    "Nothing is written and no call is made.": ("Rien n'est écrit et aucun appel n'est passé.",
                                                "Es wird nichts gespeichert und kein Anruf aufgebaut."),
    # audit
    "Changes and verdicts": ("Modifications et décisions", "Änderungen und Entscheidungen"),
    "Restricted features per person": ("Fonctions restreintes par personne",
                                       "Eingeschränkte Funktionen pro Person"),
    "Time": ("Heure", "Zeit"),
    "Kind": ("Type", "Art"),
    "Who": ("Qui", "Wer"),
    "What": ("Quoi", "Was"),
    "Before": ("Avant", "Vorher"),
    "After": ("Après", "Nachher"),
    "Filter": ("Filtrer", "Filtern"),
    "Since": ("Depuis", "Seit"),
    "Older entries": ("Entrées plus anciennes", "Ältere Einträge"),
    "Allowed": ("Autorisés", "Erlaubt"),
    "Refused": ("Refusés", "Abgelehnt"),
    "Last call": ("Dernier appel", "Letzter Anruf"),
    "any": ("tous", "alle"),
    "Logins": ("Connexions", "Anmeldungen"),
    # settings, tenants, account
    "Setting": ("Paramètre", "Einstellung"),
    "Value": ("Valeur", "Wert"),
    "set by the service provider": ("fixé par le fournisseur de service", "vom Dienstanbieter festgelegt"),
    "Create a tenant": ("Créer un client", "Kunden anlegen"),
    "Country": ("Pays", "Land"),
    "API tokens": ("Jetons d'API", "API-Token"),
    "Label": ("Libellé", "Bezeichnung"),
    "Created": ("Créé", "Erstellt"),
    "Revoke": ("Révoquer", "Widerrufen"),
    "Create a token": ("Créer un jeton", "Token erstellen"),
    "Copy this token now: it is shown only once.": ("Copiez ce jeton maintenant : il n'est affiché qu'une fois.",
                                                    "Kopieren Sie dieses Token jetzt: es wird nur einmal angezeigt."),
    "No call in progress.": ("Aucun appel en cours.", "Kein laufender Anruf."),
    "Dialed": ("Composé", "Gewählt"),
    "Seconds": ("Secondes", "Sekunden"),
    "Node": ("Nœud", "Knoten"),
    "Controller": ("Contrôleur", "Controller"),
    "Page not found.": ("Page introuvable.", "Seite nicht gefunden."),
    "Your session has expired or the form is stale: please try again.": (
        "Votre session a expiré ou le formulaire est périmé : veuillez réessayer.",
        "Ihre Sitzung ist abgelaufen oder das Formular veraltet: bitte erneut versuchen."),
    "Wrong user name or password.": ("Nom d'utilisateur ou mot de passe incorrect.",
                                     "Falscher Benutzername oder falsches Passwort."),
    "Too many failed logins from this address: wait a few minutes.": (
        "Trop d'échecs de connexion depuis cette adresse : patientez quelques minutes.",
        "Zu viele fehlgeschlagene Anmeldungen von dieser Adresse: bitte einige Minuten warten."),
    "This login link was used already or has expired.": ("Ce lien de connexion a déjà servi ou a expiré.",
                                                         "Dieser Anmeldelink wurde schon benutzt oder ist abgelaufen."),
    "Saved.": ("Enregistré.", "Gespeichert."),
    "The two PINs differ.": ("Les deux PIN diffèrent.", "Die beiden PINs stimmen nicht überein."),
    "Continue": ("Continuer", "Weiter"),
    "Class overrides": ("Classes forcées", "Klassen-Überschreibungen"),
    "E.164 prefixes forced into a class; they win over the numbering plan.": (
        "Préfixes E.164 forcés dans une classe ; ils l'emportent sur le plan de numérotation.",
        "E.164-Präfixe mit fester Klasse; sie haben Vorrang vor dem Nummernplan."),
    "Delete a tenant": ("Supprimer un client", "Kunden löschen"),
    "Every key of the tenant goes, except its audit.": ("Toutes les données du client sont supprimées, sauf son journal.",
                                                        "Alle Daten des Kunden werden gelöscht, außer dem Protokoll."),
    "Type the tenant's name to confirm.": ("Saisissez le nom du client pour confirmer.",
                                           "Geben Sie zur Bestätigung den Namen des Kunden ein."),
    "Sign in once as": ("Se connecter une fois en tant que", "Einmalig anmelden als"),
}

_INDEX = {"fr": 0, "de": 1}


def translate(text: str, lang: str) -> str:
    i = _INDEX.get(lang)
    if i is None:
        return text
    found = _T.get(text)
    return found[i] if found else text


def missing(keys) -> list[str]:
    return [k for k in keys if k not in _T]


def language() -> str:
    """The language of the current request: the tg_lang cookie, else the browser's."""
    from flask import request

    chosen = request.cookies.get("tg_lang", "")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or "en"
