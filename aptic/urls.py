"""URL map: every app's pages and API routes, the API schema and docs."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import views

api_v1 = [
    # The counter's routes (check, redeem) first: tried in order on every scan.
    path("", include("redemption.api_urls")),
    path("", include("orgs.api_urls")),
    path("", include("vouchers.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script (CSP).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api_schema"), name="api_docs"),
]

urlpatterns = [
    # First: the resolver tries patterns in order, and the API is the hot path.
    path("api/v1/", include(api_v1)),
    path("", views.home, name="home"),
    path("", include("orgs.urls")),
    path("", include("vouchers.urls")),
    path("", include("redemption.urls")),
    path("", include("redemption.urls_settlement")),
    path("", include("insight.urls")),
    path("", include("directory.urls")),
    path("", include("security.urls")),
    path("admin/", admin.site.urls),
]

handler400 = "aptic.views.bad_request"
handler403 = "aptic.views.permission_denied"
handler404 = "aptic.views.page_not_found"
handler500 = "aptic.views.server_error"

# Uploaded and generated files are never served as /media/: each is downloaded through a view
# that checks who asks (print files, statements, SEPA files, documents).
