"""Cross-cutting pieces every domain package builds on: config, extensions, errors, auth, i18n."""
