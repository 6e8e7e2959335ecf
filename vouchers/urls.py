from django.urls import include, path

from .views import orders as views

app_name = "vouchers"

urlpatterns = [
    path("programmes/", views.programme_list, name="programme_list"),
    path("programmes/nouveau/", views.programme_create, name="programme_create"),
    path("programmes/<int:pk>/modifier/", views.programme_edit, name="programme_edit"),
    path("catalogue/", views.service_list, name="service_list"),
    path("catalogue/<int:pk>/modifier/", views.service_edit, name="service_edit"),
    path("commandes/", views.order_list, name="order_list"),
    path("commandes/nouvelle/", views.order_create, name="order_create"),
    path("commandes/apercu/", views.order_quote, name="order_quote"),
    path("commandes/a-valider/", views.order_queue, name="order_queue"),
    path("commandes/<int:pk>/", views.order_detail, name="order_detail"),
    path("commandes/<int:pk>/impression/", views.order_print_progress, name="order_print_progress"),
    path("commandes/<int:pk>/envoyer/", views.order_submit, name="order_submit"),
    path("commandes/<int:pk>/annuler/", views.order_cancel, name="order_cancel"),
    path("commandes/<int:pk>/valider/", views.order_approve, name="order_approve"),
    path("commandes/<int:pk>/refuser/", views.order_reject, name="order_reject"),
    path("commandes/<int:pk>/proforma.pdf", views.order_proforma, name="order_proforma"),
    path("commandes/<int:pk>/telecharger/", views.order_download, name="order_download"),
    # Distribution: allocation, stock and follow-up; the hand-over counter and receipts.
    path("", include("vouchers.urls_stock")),
    path("", include("vouchers.urls_counter")),
    path("", include("vouchers.urls_ledger")),
]
