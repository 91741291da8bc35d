"""attrs models of Lago's request and response bodies, one module per API tag.

The model modules are imported on first use of one of their names (building some sixty attrs
classes is most of the SDK's own import time), so ``import lago_async`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._shared import (
        AppliedTax,
        Credit,
        CreditInvoice,
        CreditItem,
        ErrorDetail,
        FeeAppliedTax,
        InvoiceCustomSection,
        PaginationMeta,
        PresentationBreakdown,
        PricingUnitDetails,
        Tax,
        UsagePricingUnitDetails,
    )
    from .customers import (
        Address,
        AppliedCoupon,
        ChargeFilterUsage,
        ChargeGroupedUsage,
        ChargeUsage,
        Customer,
        CustomerBillingConfiguration,
        CustomerCheckoutUrl,
        CustomerInput,
        CustomerMetadata,
        CustomerMetadataInput,
        CustomerPortalUrl,
        CustomerProjectedUsage,
        CustomerUsage,
        IntegrationCustomer,
        IntegrationCustomerInput,
        ProjectedChargeFilterUsage,
        ProjectedChargeGroupedUsage,
        ProjectedChargeUsage,
        UsageBillableMetric,
        UsageCharge,
    )
    from .events import (
        Event,
        EventInput,
        Fee,
        FeeAmountDetails,
        FeeEstimate,
        FeeItem,
        GraduatedPercentageRange,
        GraduatedRange,
    )

__all__ = [
    # shared
    "AppliedTax",
    "Credit",
    "CreditInvoice",
    "CreditItem",
    "ErrorDetail",
    "FeeAppliedTax",
    "InvoiceCustomSection",
    "PaginationMeta",
    "PresentationBreakdown",
    "PricingUnitDetails",
    "Tax",
    "UsagePricingUnitDetails",
    # events
    "Event",
    "EventInput",
    "Fee",
    "FeeAmountDetails",
    "FeeEstimate",
    "FeeItem",
    "GraduatedPercentageRange",
    "GraduatedRange",
    # customers
    "Address",
    "AppliedCoupon",
    "ChargeFilterUsage",
    "ChargeGroupedUsage",
    "ChargeUsage",
    "Customer",
    "CustomerBillingConfiguration",
    "CustomerCheckoutUrl",
    "CustomerInput",
    "CustomerMetadata",
    "CustomerMetadataInput",
    "CustomerPortalUrl",
    "CustomerProjectedUsage",
    "CustomerUsage",
    "IntegrationCustomer",
    "IntegrationCustomerInput",
    "ProjectedChargeFilterUsage",
    "ProjectedChargeGroupedUsage",
    "ProjectedChargeUsage",
    "UsageBillableMetric",
    "UsageCharge",
]

_MODULES = ("._shared", ".events", ".customers")


def __getattr__(name: str) -> Any:
    if name in __all__:
        for module_name in _MODULES:
            module = importlib.import_module(module_name, __name__)
            if name in module.__all__:
                value = getattr(module, name)
                globals()[name] = value  # later lookups skip this function
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
