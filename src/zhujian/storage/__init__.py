"""Storage and workbench services: records, reports and their versions, users and roles, the audit log.

The web layer calls the services with a SQLAlchemy `Session` and the acting user; they check the permission
matrix, write an audit entry for every change and leave the commit to the caller. ORM tables never leave this
package. Import from the modules (this file stays empty so that `zhujian --help` does not load SQLAlchemy):

- `zhujian.storage.db`: `create_db_engine`, `engine_from_settings`, `create_session_factory`, `session_scope`
- `zhujian.storage.services`: records, worklist, reports (edit, sign, review, publish), identities
- `zhujian.storage.edits`: the edit operations (`EditConclusion`, `AddConclusion`, …)
- `zhujian.storage.users`: `ensure_admin`, `create_user`, `update_user`, `authenticate`, `get_actor`
- `zhujian.storage.security`: `hash_password`, `verify_password`
- `zhujian.storage.permissions`: roles, actions and the permission matrix
- `zhujian.storage.audit`: `verify_audit_chain`
- `zhujian.storage.errors`: the domain errors; `zhujian.storage.values`: the returned dataclasses
- `zhujian.storage.migrate`: `upgrade_database`, `downgrade_database`; `zhujian.storage.cli`: the commands
"""
