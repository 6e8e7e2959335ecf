"""The hand-over counter and the beneficiary's receipt."""

from django.urls import path

from .views import counter as views

urlpatterns = [
    path("guichet/", views.counter, name="counter"),
    path("guichet/chequier/", views.counter_lookup, name="counter_lookup"),
    path("guichet/chequier/<str:number>/remettre/", views.counter_assign, name="counter_assign"),
    path("recus/<str:reference>/", views.receipt, name="receipt"),
    path("recus/<str:reference>/recu.pdf", views.receipt_pdf, name="receipt_pdf"),
]
