from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RedemptionConfig(AppConfig):
    name = "redemption"
    verbose_name = _("Encaissement et remboursement")
