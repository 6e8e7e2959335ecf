"""On PostgreSQL, refuse UPDATE and DELETE on the audit log at the database level."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION orgs_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'orgs_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER orgs_auditevent_append_only
    BEFORE UPDATE OR DELETE ON orgs_auditevent
    FOR EACH ROW EXECUTE FUNCTION orgs_auditevent_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS orgs_auditevent_append_only ON orgs_auditevent;
DROP FUNCTION IF EXISTS orgs_auditevent_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("orgs", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
