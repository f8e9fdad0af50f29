from pydantic import Field

from clarion.schemas import OutModel


class LinkStatsOut(OutModel):
    url: str = Field(description="the original URL, as it appeared in the personalized text")
    clicks: int = Field(description="every visit of its short links")
    unique_clicks: int = Field(description="recipients who clicked it at least once")
