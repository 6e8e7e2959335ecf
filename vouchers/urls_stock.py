"""Distribution pages: booklets, allocation and return, movements, stock, follow-up, hand-outs."""

from django.urls import path

from .views import stock as views

# Fixed paths first: « chequiers/<number>/ » would otherwise take « attribuer », « retour »…
urlpatterns = [
    path("chequiers/", views.booklet_list, name="booklet_list"),
    path("chequiers/attribuer/", views.booklet_allocate, name="booklet_allocate"),
    path("chequiers/retour/", views.booklet_return, name="booklet_return"),
    path("chequiers/mouvements/", views.movement_list, name="movement_list"),
    path("chequiers/<str:number>/", views.booklet_detail, name="booklet_detail"),
    path("chequiers/<str:number>/bloquer/", views.booklet_block, name="booklet_block"),
    path("chequiers/<str:number>/bloquer-des-cheques/", views.cheques_block, name="cheques_block"),
    path("chequiers/<str:number>/remplacer/", views.booklet_replace, name="booklet_replace"),
    path("stock/", views.stock, name="stock"),
    path("suivi/", views.follow_up, name="follow_up"),
    path("suivi/export.csv", views.follow_up_csv, name="follow_up_csv"),
    path("suivi/remises/", views.handout_list, name="handout_list"),
]
