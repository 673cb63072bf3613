"""HTTP routes of the article browser: GET /v1/articles, /v1/articles/{id}, /v1/sources."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from newsqa.errors import ArticleNotFound
from newsqa.service.api.article_catalogue import (
    ArticleDetail,
    ArticlePage,
    ArticleQuery,
    Catalogue,
    Catalogues,
    SourceSummary,
)
from newsqa.settings import Settings


def articles_router(settings: Settings) -> APIRouter:
    """Reads the same store snapshot the answers come from, so a cited article can always be opened."""
    router = APIRouter(prefix="/v1", tags=["articles"])
    catalogues = Catalogues()

    def current(request: Request) -> Catalogue:
        return catalogues.of(request.app.state.service.answerer.store.current())

    CatalogueDep = Annotated[Catalogue, Depends(current)]

    @router.get("/articles", response_model=ArticlePage)
    def list_articles(query: Annotated[ArticleQuery, Query()], catalogue: CatalogueDep) -> ArticlePage:
        """Articles newest first (undated last), by headline words, outlet and publication date."""
        return catalogue.page(query, settings.articles_page_size)

    @router.get("/articles/{article_id:path}", response_model=ArticleDetail,
                responses={404: {"description": "No article has this id."}})
    def get_article(article_id: str, catalogue: CatalogueDep) -> ArticleDetail:
        """An article's metadata, its text and where each of its chunks (what citations name) lies in it."""
        if (article := catalogue.article(article_id)) is None:
            raise ArticleNotFound(article_id)
        return article

    @router.get("/sources", response_model=list[SourceSummary])
    def list_sources(catalogue: CatalogueDep) -> list[SourceSummary]:
        """The outlets, with how many articles each has and the dates they span."""
        return catalogue.sources()

    return router
