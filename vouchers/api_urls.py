from django.urls import path

from . import api, api_booklets

urlpatterns = [
    path("programmes/", api.ProgrammeList.as_view(), name="api_programmes"),
    path("orders/", api.OrderListCreate.as_view(), name="api_orders"),
    path("orders/<int:pk>/", api.OrderDetail.as_view(), name="api_order_detail"),
    path("booklets/", api_booklets.BookletList.as_view(), name="api_booklets"),
    path("booklets/<str:number>/", api_booklets.BookletDetail.as_view(), name="api_booklet"),
    path(
        "booklets/<str:number>/assign/",
        api_booklets.BookletAssign.as_view(),
        name="api_booklet_assign",
    ),
]
