from django.urls import path

from . import api

urlpatterns = [
    path("programmes/", api.ProgrammeList.as_view(), name="api_programmes"),
    path("orders/", api.OrderListCreate.as_view(), name="api_orders"),
    path("orders/<int:pk>/", api.OrderDetail.as_view(), name="api_order_detail"),
]
