"""The loop after the draft: alerts of important abnormal results (危急值 / 重要异常结果) that somebody must tell the
examinee about in time, recheck tasks (随访) from signed conclusions, and the operations counts (运营).

Modules (import them directly; this file stays empty so that `zhujian --help` does not load SQLAlchemy):

- `zhujian.alerts.policy`: the KB defaults (`kb/data/alerts.yaml`) and the center's overrides; due times and
  follow-up windows
- `zhujian.alerts.clock`: the injected clock and policy of a database session
- `zhujian.alerts.services`: open, list, notify and close alerts
- `zhujian.alerts.followup`: recheck tasks: created on signature, contacts and outcomes, closed by the next visit
- `zhujian.alerts.operations`: counts per day and per physician, CSV
- `zhujian.alerts.notifiers`: notifier plugins (SMTP e-mail, SMS gateway webhook), entry point group
  `zhujian.notifiers`
- `zhujian.alerts.hooks`: what the storage services call when a report is stored or signed
"""
