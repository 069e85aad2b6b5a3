"""Gymnasium environments over the customer simulator.

Importing this package registers (and does nothing else):

* ``CampaignOpt/CustomerBandit-v0`` (:class:`envs.customer_bandit.CustomerBanditEnv`): one
  decision per customer, a contextual bandit;
* ``CampaignOpt/Campaign-v0`` (:class:`envs.campaign.CampaignEnv`): a whole campaign as an MDP,
  one step per iteration.

Both take ``scenario=`` (a built-in name or a YAML path) or ``simulator=`` (any object following
:class:`simulators.CustomerSimulator`). The module docstrings of :mod:`envs.customer_bandit` and
:mod:`envs.campaign` document observations, actions, rewards and episodes.

Example:
    >>> import envs, gymnasium as gym
    >>> env = gym.make("CampaignOpt/Campaign-v0", scenario="retail", n_customers=3000)
    >>> obs, info = env.reset(seed=0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium

if TYPE_CHECKING:
    from envs.campaign import CampaignEnv
    from envs.customer_bandit import CustomerBanditEnv

__all__ = ["CAMPAIGN_ID", "CUSTOMER_BANDIT_ID", "CampaignEnv", "CustomerBanditEnv"]

CUSTOMER_BANDIT_ID = "CampaignOpt/CustomerBandit-v0"
CAMPAIGN_ID = "CampaignOpt/Campaign-v0"

for _id, _entry in (
    (CUSTOMER_BANDIT_ID, "envs.customer_bandit:CustomerBanditEnv"),
    (CAMPAIGN_ID, "envs.campaign:CampaignEnv"),
):
    if _id not in gymnasium.registry:
        gymnasium.register(id=_id, entry_point=_entry)


def __getattr__(name: str) -> Any:
    """Import the environment classes lazily, so ``import envs`` only registers."""
    if name == "CampaignEnv":
        from envs.campaign import CampaignEnv

        return CampaignEnv
    if name == "CustomerBanditEnv":
        from envs.customer_bandit import CustomerBanditEnv

        return CustomerBanditEnv
    raise AttributeError(f"module 'envs' has no attribute {name!r}")
