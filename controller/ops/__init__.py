"""Operating the controller: metrics and health, logs, alerts (webhook), the
doctor that checks a FreeSWITCH set-up, and the catalog of prompts."""
