"""The "Sales" group, holding leads.change_lead: its members may change leads from the lead page."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP_NAME = "Sales"
CODENAME = "change_lead"


def create_sales_group(apps, schema_editor):
    # Permissions are normally created after `migrate` finishes (post_migrate):
    # create them now, from this migration's model state, so the group can hold one.
    app_config = apps.get_app_config("leads")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="leads", codename=CODENAME)
    group, _ = Group.objects.get_or_create(name=GROUP_NAME)
    group.permissions.add(permission)


def remove_permission_from_group(apps, schema_editor):
    # The group itself may have members by now: only what this migration granted is taken back.
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name=GROUP_NAME).first()
    if group is not None:
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="leads", codename=CODENAME)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0002_leadchange"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_sales_group, remove_permission_from_group)]
